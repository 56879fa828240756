# The NixOS module as the flake exports it (nixosModules.default): nix/module.nix plus the versions
# the flake pins (nix/database.nix) and the flake's package. Its own file so that the evaluation
# test (tests/static/test_nix_eval.py) evaluates exactly this wiring.
{ packagesFor }:
{ pkgs, lib, ... }:
let
  database = pkgs.callPackage ./database.nix { };
in
{
  imports = [ ./module.nix ];
  services.collabry.package = lib.mkDefault (packagesFor pkgs.stdenv.hostPlatform.system).default;
  # the web front end, once the flake builds one (nix/frontend.nix)
  services.collabry.frontend.package = lib.mkDefault (
    (packagesFor pkgs.stdenv.hostPlatform.system).frontend or null
  );
  services.collabry.database = {
    postgresqlPackage = lib.mkDefault database.postgresql;
    extensions = lib.mkDefault database.extensions;
  };
  services.ferretdb.package = lib.mkDefault database.ferretdb;
}
