# REPLICA of nixpkgs' nixos/modules/services/logging/vector.nix: the options services.collabry
# uses (enable, package, journaldAccess, settings), with their types and defaults, and the unit's
# journal access. Provenance: tests/static/nixeval/README.md.
{
  config,
  lib,
  pkgs,
  ...
}:
let
  cfg = config.services.vector;
in
{
  options.services.vector = {
    enable = lib.mkEnableOption "Vector, a high-performance observability data pipeline";
    package = lib.mkPackageOption pkgs "vector" { };
    journaldAccess = lib.mkOption {
      type = lib.types.bool;
      default = false;
      description = "Enable Vector to access journald.";
    };
    settings = lib.mkOption {
      type = (pkgs.formats.json { }).type;
      default = { };
      description = "Specify the configuration for Vector in Nix.";
    };
  };

  config = lib.mkIf cfg.enable {
    systemd.services.vector = {
      description = "Vector event and log aggregator";
      wantedBy = [ "multi-user.target" ];
      serviceConfig = {
        ExecStart = "${lib.getExe cfg.package} --config /etc/vector/vector.toml";
        DynamicUser = true;
        StateDirectory = "vector";
        SupplementaryGroups = lib.mkIf cfg.journaldAccess "systemd-journal";
      };
    };
  };
}
