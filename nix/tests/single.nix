# collabry-single: the whole appliance on one NixOS machine, as the module sets it up by default
# (two gateway replicas behind nginx, engine, worker timer, local FerretDB and Redis) plus the
# local model server and the restic backup, driven through nginx like a client would.
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
        # the daily backup to its default local restic repository; the test starts it by hand
        # and restores from it
        backup = {
          enable = true;
          passwordFile = "${common.secretsDir}/backup-password";
        };
      };
      systemd.tmpfiles.rules = [
        "f ${common.secretsDir}/backup-password 0600 root root - vm-test-backup-password-0123456789abcdef"
      ];
      virtualisation = {
        memorySize = 4096;
        cores = 4;
      };
    };

  testScript = common.prelude + builtins.readFile ./single.py;

  meta.timeout = 1800;
}
