# REPLICA (written for this test, not nixpkgs code) of the part of nixpkgs'
# nixos/modules/services/databases/postgresql.nix that services.collabry touches. Option names,
# types and defaults follow the 2025 version read for this purpose (see PROVENANCE.md: the
# `extensions` coercedTo/functionTo type, `settings` with shared_preload_libraries as
# `nullOr (coercedTo (listOf str) (concatStringsSep ",") commas)`, the package default
# postgresql_17 for stateVersion >= 25.11, finalPackage = package.withPackages extensions, the
# settings the module adds, the postgres user, the postgresql.service/.target layout). Options not
# declared here fail the evaluation (unknown option), which is the point. Abridged: no
# systemCallFilter, initdbArgs rendering, checkConfig, ensure* implementation (postgresql-setup).
{
  config,
  lib,
  pkgs,
  ...
}:
let
  inherit (lib) mkOption mkEnableOption types mkIf mkDefault mkBefore mkAfter mkMerge;
  cfg = config.services.postgresql;
  toStr =
    value:
    if true == value then
      "yes"
    else if false == value then
      "no"
    else if lib.isString value then
      "'${lib.replaceStrings [ "'" ] [ "''" ] value}'"
    else
      builtins.toString value;
  configFile = pkgs.writeTextDir "postgresql.conf" (
    lib.concatStringsSep "\n" (
      lib.mapAttrsToList (n: v: "${n} = ${toStr v}") (lib.filterAttrs (_: x: x != null) cfg.settings)
    )
  );
in
{
  options.services.postgresql = {
    enable = mkEnableOption "PostgreSQL Server";
    enableJIT = mkEnableOption "JIT support";
    package = mkOption { type = types.package; };
    finalPackage = mkOption {
      type = types.package;
      readOnly = true;
      default =
        let
          withJit = if cfg.enableJIT then cfg.package.withJIT else cfg.package.withoutJIT;
        in
        if cfg.extensions == [ ] then withJit else withJit.withPackages cfg.extensions;
    };
    dataDir = mkOption { type = types.path; };
    authentication = mkOption {
      type = types.lines;
      default = "";
    };
    identMap = mkOption {
      type = types.lines;
      default = "";
    };
    initialScript = mkOption {
      type = types.nullOr types.path;
      default = null;
    };
    ensureDatabases = mkOption {
      type = types.listOf types.str;
      default = [ ];
    };
    ensureUsers = mkOption {
      type = types.listOf (
        types.submodule {
          options = {
            name = mkOption { type = types.str; };
            ensureDBOwnership = mkOption {
              type = types.bool;
              default = false;
            };
          };
        }
      );
      default = [ ];
    };
    enableTCPIP = mkOption {
      type = types.bool;
      default = false;
    };
    extensions = mkOption {
      type = with types; coercedTo (listOf path) (path: _ignorePg: path) (functionTo (listOf path));
      default = _: [ ];
    };
    settings = mkOption {
      type =
        with types;
        submodule {
          freeformType = attrsOf (oneOf [
            bool
            float
            int
            str
          ]);
          options = {
            shared_preload_libraries = mkOption {
              type = nullOr (coercedTo (listOf str) (lib.concatStringsSep ",") commas);
              default = null;
            };
            log_line_prefix = mkOption {
              type = types.str;
              default = "[%p] ";
            };
            port = mkOption {
              type = types.port;
              default = 5432;
            };
          };
        };
      default = { };
    };
    superUser = mkOption {
      type = types.str;
      default = "postgres";
      internal = true;
      readOnly = true;
    };
  };

  config = mkIf cfg.enable {
    services.postgresql.settings = {
      hba_file = "${pkgs.writeText "pg_hba.conf" cfg.authentication}";
      ident_file = "${pkgs.writeText "pg_ident.conf" cfg.identMap}";
      log_destination = "stderr";
      listen_addresses = if cfg.enableTCPIP then "*" else "localhost";
      jit = mkDefault (if cfg.enableJIT then "on" else "off");
    };
    # stateVersion >= 25.11 (the stub has no system.stateVersion)
    services.postgresql.package = mkDefault pkgs.postgresql_17;
    services.postgresql.dataDir = mkDefault "/var/lib/postgresql/${cfg.package.psqlSchema}";
    services.postgresql.authentication = mkMerge [
      (mkBefore "# Generated file; do not edit!")
      (mkAfter ''
        local all postgres         peer map=postgres
        local all all              peer
        host  all all 127.0.0.1/32 md5
        host  all all ::1/128      md5
      '')
    ];
    services.postgresql.identMap = mkAfter ''
      postgres postgres postgres
    '';
    users.users.postgres = {
      name = "postgres";
      group = "postgres";
      description = "PostgreSQL server user";
      home = "${cfg.dataDir}";
      # the real module sets uid = config.ids.uids.postgres and useDefaultShell (not replicated)
      isSystemUser = true;
    };
    users.groups.postgres = { };
    environment.systemPackages = [ cfg.finalPackage ];
    systemd.targets.postgresql = {
      description = "PostgreSQL";
      wantedBy = [ "multi-user.target" ];
      requires = [
        "postgresql.service"
        "postgresql-setup.service"
      ];
    };
    systemd.services.postgresql = {
      description = "PostgreSQL Server";
      after = [ "network.target" ];
      wants = [ "postgresql.target" ];
      partOf = [ "postgresql.target" ];
      environment.PGDATA = cfg.dataDir;
      path = [ cfg.finalPackage ];
      preStart = ''
        if ! test -e ${cfg.dataDir}/PG_VERSION; then
          rm -f ${cfg.dataDir}/*.conf
          initdb -U ${cfg.superUser}
          touch "${cfg.dataDir}/.first_startup"
        fi
        ln -sfn "${configFile}/postgresql.conf" "${cfg.dataDir}/postgresql.conf"
      '';
      serviceConfig = {
        User = "postgres";
        Group = "postgres";
        RuntimeDirectory = "postgresql";
        Type = "notify";
        KillSignal = "SIGINT";
        KillMode = "mixed";
        TimeoutSec = 120;
        ExecStart = "${cfg.finalPackage}/bin/postgres";
        Restart = "always";
      };
    };
  };
}
