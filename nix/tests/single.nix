# collabry-single: the whole appliance on one NixOS machine, as the module sets it up by default
# (two gateway replicas behind nginx, engine, worker timer, local FerretDB and Redis) plus the
# local model server, driven through nginx like a client would.
{
  pkgs,
  module,
  collabry,
}:
let
  common = import ./common.nix { inherit pkgs; };
in
pkgs.testers.runNixOSTest {
  name = "collabry-single";

  nodes.machine =
    { ... }:
    {
      imports = [
        module
        common.secrets
        common.tools
        common.redisTools
      ];
      services.collabry = {
        enable = true;
        package = collabry;
        gateway.replicas = 2;
        llm.local.enable = true;
        openFirewall = true;
      };
      virtualisation = {
        memorySize = 4096;
        cores = 4;
      };
    };

  testScript = common.prelude + builtins.readFile ./single.py;

  meta.timeout = 1800;
}
