# services.collabry: the appliance on NixOS.
#
# The units themselves are the repository's systemd/ files, shipped by the package under
# $out/lib/systemd/system (systemd.packages), exactly as a Debian host installs them. This module
# only adds what a host decides: which units are enabled (wantedBy), drop-ins with the secret
# files (LoadCredential=), the settings file they all read (/etc/collabry/collabry.env), local
# Redis and the database (PostgreSQL with the DocumentDB extension set, FerretDB v2 in front), the
# nginx site built from nginx/locations.conf (and the web front end at `/`), the firewall.
#
# Versions: nothing here names one. The flake (nixosModules.default) supplies FerretDB 2.5.0, the
# pinned pg_cron/pgvector sources and PostgreSQL 17 (nix/database.nix); without the flake the
# host's nixpkgs provides them.
#
# Facts about the shipped units (credential names, command lines, stop timeout) are read from the
# unit files at evaluation time, so a change in systemd/ that this module does not account for
# fails `nixos-rebuild` with an assertion instead of failing a unit at boot.
{
  config,
  lib,
  pkgs,
  ...
}:
let
  cfg = config.services.collabry;

  inherit (lib)
    mkOption
    mkEnableOption
    mkIf
    mkMerge
    types
    literalExpression
    optional
    optionals
    optionalString
    ;

  stateDir = "/var/lib/collabry";
  envFilePath = "/etc/collabry/collabry.env";

  # ---- the shipped unit files and nginx rules, read from this repository --------------------------
  facts = import ./unit-facts.nix { };
  # deploy/vector.toml: the log-shipping pipeline Debian hosts use too (services.collabry.logShipping)
  vectorConfig = builtins.fromTOML (builtins.readFile ../deploy/vector.toml);
  helpers = import ./helpers.nix;
  inherit (facts) unitFiles;
  declaredCredentials = role: facts.credentials.${role};

  # ---- secrets ----------------------------------------------------------------------------------
  # A secret option holds a path as a string: a path literal (./secret) would be copied into the
  # world-readable store, so the type refuses it; the assertions below refuse store paths too.
  secretPath = types.str // {
    name = "secretPath";
    description = "absolute path of a file outside the Nix store, as a string";
    check = v: lib.isString v && lib.hasPrefix "/" v;
  };
  isStorePath = p: lib.hasPrefix "${builtins.storeDir}/" p;

  secretOptions = {
    "jwt-secret" = {
      path = "jwtSecretFile";
      value = cfg.jwtSecretFile;
    };
    "service-token" = {
      path = "serviceTokenFile";
      value = cfg.serviceTokenFile;
    };
    "webhook-secret" = {
      path = "webhookSecretFile";
      value = cfg.webhookSecretFile;
    };
    "llm-api-key" = {
      path = "llm.apiKeyFile";
      value = cfg.llm.apiKeyFile;
    };
    "database-uri" = {
      path = "database.uriFile";
      value = cfg.database.uriFile;
    };
    "redis-url" = {
      path = "redis.urlFile";
      value = cfg.redis.urlFile;
    };
    "smtp-password" = {
      path = "mail.smtpPasswordFile";
      value = cfg.mail.smtpPasswordFile;
    };
    "backup-password" = {
      path = "backup.passwordFile";
      value = cfg.backup.passwordFile;
    };
    "backup-s3-credentials" = {
      path = "backup.s3CredentialsFile";
      value = cfg.backup.s3CredentialsFile;
    };
  };
  secretFile = id: (secretOptions.${id} or { value = null; }).value;
  # Optional secrets a process reads when they are configured (docs/interfaces.md); the unit files
  # do not name them because a missing file would stop the unit.
  optionalCredentials = {
    gateway = [
      "database-uri"
      "redis-url"
      "smtp-password"
    ];
    engine = [
      "llm-api-key"
      "database-uri"
      "redis-url"
    ];
    engineReplica = [
      "llm-api-key"
      "database-uri"
      "redis-url"
    ];
    worker = [
      "database-uri"
      "redis-url"
    ];
    migrate = [
      "database-uri"
      "redis-url"
    ];
    llm = [ ];
    backup = [
      "backup-s3-credentials"
      "database-uri"
      "redis-url"
    ];
  };
  credentialsOf =
    role:
    lib.unique (
      declaredCredentials role
      ++ builtins.filter (id: secretFile id != null) optionalCredentials.${role}
    );
  # Later LoadCredential= lines with the same ID replace the path of the shipped one.
  loadCredential =
    role:
    map (id: "${id}:${secretFile id}") (
      builtins.filter (id: secretFile id != null) (credentialsOf role)
    );

  # ---- what runs on this host -----------------------------------------------------------------
  gatewayPorts = lib.genList (i: cfg.gateway.basePort + i) cfg.gateway.replicas;
  gatewayOn = cfg.gateway.enable && cfg.gateway.replicas > 0;
  # engines on this host: collabry-engine.service on 8100, collabry-engine@<port> from 8101 up
  engineReplicaPorts = lib.genList (i: 8101 + i) (cfg.engine.replicas - 1);
  engineHost =
    if
      isLoopbackAddress cfg.engine.listenAddress
      || builtins.elem cfg.engine.listenAddress [
        "0.0.0.0"
        "::"
      ]
    then
      "127.0.0.1"
    else
      cfg.engine.listenAddress;
  engineUrls =
    (
      if cfg.engine.enable then
        [ cfg.engine.url ] ++ map (p: "http://${engineHost}:${toString p}") engineReplicaPorts
      else
        [ cfg.engine.url ]
    )
    ++ cfg.engine.remote;
  anyProcess = gatewayOn || cfg.engine.enable || cfg.worker.enable;
  roles =
    optional gatewayOn "gateway"
    ++ optional cfg.engine.enable "engine"
    ++ optional (cfg.engine.enable && cfg.engine.replicas > 1) "engineReplica"
    ++ optional cfg.worker.enable "worker"
    ++ optional anyProcess "migrate"
    ++ optional cfg.llm.local.enable "llm"
    ++ optional (anyProcess && cfg.backup.enable) "backup";

  useLocalDb = anyProcess && cfg.database.createLocally;
  useLocalPostgresql = useLocalDb && cfg.database.postgresqlUrlFile == null;
  ferretdbCfg = config.services.ferretdb;
  ferretdbListen = ferretdbCfg.settings.FERRETDB_LISTEN_ADDR or "127.0.0.1:27017";
  ferretdbOnLoopback = builtins.match "(127[.][0-9.]+|localhost|[[]::1[]]):[0-9]+" ferretdbListen != null;
  # deploy/postgresql.conf: the database settings Debian hosts use (preloaded libraries, the
  # database holding the extension and pg_cron's jobs, pg_cron in background workers, limits).
  pgConf = facts.postgresqlSettings;
  pgPreload = pgConf.shared_preload_libraries or [
    "pg_cron"
    "pg_documentdb_core"
    "pg_documentdb"
  ];
  pgDatabase = pgConf."cron.database_name" or "postgres";
  # The role FerretDB connects as, over the unix socket with peer authentication: FerretDB's unit
  # runs as user `ferretdb`; DocumentDB's connections back to the server come from `postgres`.
  pgRole = "ferretdb";
  pgSocketDir = "/run/postgresql";
  useLocalRedis = anyProcess && cfg.redis.createLocally;
  redisServer = config.services.redis.servers.collabry;
  localDeps = optional useLocalDb "ferretdb.service" ++ optional useLocalRedis "redis-collabry.service";

  inherit (helpers) isLoopbackUrl isLoopbackAddress;

  # FerretDB listens on 127.0.0.1:27017 (PostgreSQL on its unix socket behind it); the local Redis
  # on its unix socket only.
  databaseUri = if useLocalDb then "mongodb://127.0.0.1:27017" else cfg.database.uri;
  redisUrl = if useLocalRedis then "unix://${redisServer.unixSocket}" else cfg.redis.url;

  llmBaseUrl =
    if cfg.llm.local.enable then
      "http://127.0.0.1:8200/v1"
    else if cfg.llm.baseUrl != null then
      cfg.llm.baseUrl
    else
      "";

  # ---- settings -> /etc/collabry/collabry.env ---------------------------------------------------
  managedSettings = {
    COLLABRY_MODE = "production";
    COLLABRY_STATE_DIR = stateDir;
    COLLABRY_DATABASE_NAME = cfg.database.name;
    COLLABRY_ENGINE_URL = lib.concatStringsSep "," engineUrls;
    COLLABRY_TRUSTED_PROXIES = lib.concatStringsSep "," cfg.trustedProxies;
    COLLABRY_LLM_BASE_URL = llmBaseUrl;
    COLLABRY_LLM_MODEL = cfg.llm.model;
  }
  // lib.optionalAttrs cfg.backup.enable {
    COLLABRY_BACKUP_REPOSITORY = cfg.backup.repository;
    COLLABRY_BACKUP_KEEP_DAILY = cfg.backup.keep.daily;
    COLLABRY_BACKUP_KEEP_WEEKLY = cfg.backup.keep.weekly;
    COLLABRY_BACKUP_KEEP_MONTHLY = cfg.backup.keep.monthly;
    COLLABRY_RESTIC = lib.getExe cfg.backup.package;
  }
  // lib.optionalAttrs (databaseUri != null) { COLLABRY_DATABASE_URI = databaseUri; }
  // lib.optionalAttrs (redisUrl != null) { COLLABRY_REDIS_URL = redisUrl; };
  # Names of secret values and their *_FILE forms: never settings (principle: secrets are files,
  # passed with LoadCredential=).
  secretEnvNames = lib.concatMap (
    id:
    let
      v = "COLLABRY_" + lib.toUpper (lib.replaceStrings [ "-" ] [ "_" ] id);
    in
    [
      v
      "${v}_FILE"
    ]
  ) (builtins.attrNames secretOptions);
  envSettings = managedSettings // cfg.settings;
  envFile = pkgs.writeText "collabry.env" (
    "# Generated by the NixOS module services.collabry; read by every collabry unit.\n"
    + helpers.renderEnvFile envSettings
  );

  # ---- nginx ---------------------------------------------------------------------------------------
  upstreamServers =
    if cfg.nginx.upstreamServers != null then
      cfg.nginx.upstreamServers
    else
      map (p: "127.0.0.1:${toString p}") gatewayPorts;

  metricsOn = cfg.metrics.allowFrom != [ ];

  # ---- drop-ins ---------------------------------------------------------------------------------
  resources =
    r:
    lib.optionalAttrs (r.memoryMax != null) { MemoryMax = r.memoryMax; }
    // lib.optionalAttrs (r.cpuQuota != null) { CPUQuota = r.cpuQuota; };

  dropin =
    role:
    {
      overrideStrategy = "asDropin";
      restartTriggers = [ envFile ];
      wants = localDeps;
      after = localDeps;
      serviceConfig = {
        LoadCredential = loadCredential role;
        SupplementaryGroups = optional (useLocalRedis && role != "llm") redisServer.group;
        IPAddressAllow = cfg.network.allow;
      };
    };

  listenOverride =
    role: address: port:
    mkIf (!isLoopbackAddress address) {
      ExecStart = [
        ""
        "${lib.getExe cfg.package} ${role} --host ${address} --port ${port}"
      ];
    };

  # `collabry-admin ARGS`: a collabry command run the way the units run it (user, slice, settings
  # file, credentials), as deploy/collabry-admin.in does on Debian hosts.
  admin = pkgs.writeShellScriptBin "collabry-admin" ''
    set -eu
    exec ${config.systemd.package}/bin/systemd-run --quiet --wait --pipe --collect --service-type=exec \
      -p User=collabry -p Group=collabry -p StateDirectory=collabry -p WorkingDirectory=${stateDir} \
      -p Slice=system-collabry.slice -p PrivateTmp=yes -p NoNewPrivileges=yes \
      ${optionalString useLocalRedis "-p SupplementaryGroups=${redisServer.group}"} \
      -p EnvironmentFile=${envFilePath} \
      -E OMP_NUM_THREADS=1 -E OPENBLAS_NUM_THREADS=1 -E PYTHONUNBUFFERED=1 \
      ${
        lib.concatMapStringsSep " " (c: "-p ${lib.escapeShellArg "LoadCredential=${c}"}") (
          lib.mapAttrsToList (id: o: "${id}:${o.value}") (
            lib.filterAttrs (_: o: o.value != null) secretOptions
          )
        )
      } \
      -- ${lib.getExe cfg.package} "$@"
  '';

  resourceOptions = name: {
    memoryMax = mkOption {
      type = types.nullOr types.str;
      default = null;
      example = "1G";
      description = "`MemoryMax=` for the ${name}; `null` keeps the value of the shipped unit.";
    };
    cpuQuota = mkOption {
      type = types.nullOr types.str;
      default = null;
      example = "100%";
      description = "`CPUQuota=` for the ${name}; `null` keeps the value of the shipped unit.";
    };
  };
in
{
  options.services.collabry = {
    enable = mkEnableOption "Collabry, the collaborative AI-assisted study platform";

    frontend.package = mkOption {
      type = types.nullOr types.package;
      default = null;
      defaultText = literalExpression "null (the flake's module: the built web front end, nix/frontend.nix)";
      description = ''
        The built web front end (its `index.html` and `assets/`), served by nginx at `/` as the
        virtual host's `root` (nginx/locations.conf holds the rules for `/` and `/assets/`).
        `null`: no front end on this host, only the API.
      '';
    };

    package = mkOption {
      type = types.package;
      default = pkgs.callPackage ./package.nix { };
      defaultText = literalExpression "pkgs.callPackage ./nix/package.nix { }";
      description = "The collabry package; its `lib/systemd/system` holds the units this module enables.";
    };

    gateway = {
      enable = mkEnableOption "the gateway replicas (REST, Socket.IO, SSE) on this host" // {
        default = true;
      };
      replicas = mkOption {
        type = types.ints.unsigned;
        default = 2;
        description = ''
          Number of gateway processes, `collabry-gateway@<port>.service` for ports
          {option}`services.collabry.gateway.basePort` upwards. The same list feeds nginx's upstreams.
        '';
      };
      basePort = mkOption {
        type = types.port;
        default = 8001;
        description = "Port of the first gateway replica.";
      };
      listenAddress = mkOption {
        type = types.str;
        default = "127.0.0.1";
        example = "0.0.0.0";
        description = ''
          Address the gateways listen on. Anything but loopback is for an nginx on another host:
          also list that host in {option}`services.collabry.network.allow` and
          {option}`services.collabry.trustedProxies`.
        '';
      };
      restartIfChanged = mkOption {
        type = types.bool;
        default = true;
        description = ''
          Whether `nixos-rebuild switch` restarts changed gateway units (all at once). Set to `false`
          to roll them one at a time with the rollout procedure instead.
        '';
      };
    }
    // resourceOptions "each gateway replica";

    engine = {
      enable = mkEnableOption "the engine (ingestion, retrieval, generation) on this host" // {
        default = true;
      };
      listenAddress = mkOption {
        type = types.str;
        default = "127.0.0.1";
        description = ''
          Address the engine listens on (port 8100). Only for gateways and workers on other hosts of
          a private network: list them in {option}`services.collabry.network.allow`.
        '';
      };
      url = mkOption {
        type = types.str;
        default = "http://127.0.0.1:8100";
        example = "http://10.0.0.5:8100";
        description = "Where this host's gateways and worker reach the engine (`COLLABRY_ENGINE_URL`).";
      };
      replicas = mkOption {
        type = types.ints.between 1 16;
        default = 1;
        example = 2;
        description = ''
          Engines on this host: `collabry-engine.service` on port 8100 and
          `collabry-engine@<port>` from 8101 up. The gateways spread users over every engine by
          rendezvous hashing (each user's index stays warm in one engine) and fail over when one
          refuses or answers 503.
        '';
      };
      remote = mkOption {
        type = types.listOf (types.strMatching "https?://[^@]+");
        default = [ ];
        example = [ "http://10.0.0.6:8100" "http://10.0.0.6:8101" ];
        description = ''
          Engines on other hosts, added to this host's list (`COLLABRY_ENGINE_URL`); list their
          addresses in {option}`services.collabry.network.allow`.
        '';
      };
      allowOutbound = mkOption {
        type = types.bool;
        default = cfg.llm.baseUrl != null && !(isLoopbackUrl cfg.llm.baseUrl);
        defaultText = lib.literalMD "`true` when {option}`services.collabry.llm.baseUrl` is set and not a loopback URL";
        description = ''
          Lift the engine unit's `IPAddressDeny=any`, for an LLM API whose addresses are not known
          in advance.
        '';
      };
    }
    // resourceOptions "engine";

    worker = {
      enable = mkEnableOption "the worker timer (reminders, subscriptions, cleanup) on this host" // {
        default = true;
      };
    }
    // resourceOptions "worker";

    backup = {
      enable = mkEnableOption ''
        the daily backup (collabry-backup.timer): the database, the uploads, Redis keys and the FAISS
        snapshots into a restic repository, with retention; restore with
        `collabry-admin backups restore [SNAPSHOT] --drop`
      '';
      package = mkOption {
        type = types.package;
        default = pkgs.restic;
        defaultText = literalExpression "pkgs.restic";
        description = "The restic the backup runs.";
      };
      repository = mkOption {
        type = types.strMatching "(/.+|s3:https?://[^/@]+/[^/].*)";
        default = "/var/lib/collabry-backup/restic";
        example = "s3:https://s3.eu-central-1.amazonaws.com/example-backups/collabry";
        description = ''
          The restic repository: a local absolute path (the default is the unit's own state
          directory; another path needs `ReadWritePaths=` in a drop-in) or an S3-compatible
          bucket, `s3:https://HOST/BUCKET[/PREFIX]`, without credentials (see `s3CredentialsFile`).
        '';
      };
      passwordFile = mkOption {
        type = types.nullOr secretPath;
        default = null;
        description = "File with the repository's password (keep a copy elsewhere: without it the backups cannot be read).";
      };
      s3CredentialsFile = mkOption {
        type = types.nullOr secretPath;
        default = null;
        description = ''
          An AWS-style shared credentials file (`[default]`, `aws_access_key_id`,
          `aws_secret_access_key`) for an `s3:` repository.
        '';
      };
      schedule = mkOption {
        type = types.str;
        default = "*-*-* 03:15:00";
        description = "When the backup runs (systemd `OnCalendar=`).";
      };
      keep = {
        daily = mkOption {
          type = types.ints.unsigned;
          default = 7;
          description = "Daily snapshots kept.";
        };
        weekly = mkOption {
          type = types.ints.unsigned;
          default = 4;
          description = "Weekly snapshots kept.";
        };
        monthly = mkOption {
          type = types.ints.unsigned;
          default = 6;
          description = "Monthly snapshots kept.";
        };
      };
      allow = mkOption {
        type = types.listOf types.str;
        default = [ ];
        example = [ "203.0.113.10" ];
        description = "Addresses or CIDRs the backup may reach beyond loopback and `network.allow` (the S3 endpoint).";
      };
    };

    mail.smtpPasswordFile = mkOption {
      type = types.nullOr secretPath;
      default = null;
      description = ''
        File with the password of the SMTP login in `settings.COLLABRY_SMTP_URL`
        (`smtp://user@host:587` or `smtps://user@host`), used for password-reset emails; credential
        `smtp-password` of the gateways.
      '';
    };

    logShipping = {
      enable = mkEnableOption ''
        shipping the appliance's JSON logs (with their request ids) from the journal to Loki with
        Vector (`services.vector`, configured from the repository's `deploy/vector.toml`)
      '';
      lokiEndpoint = mkOption {
        type = types.strMatching "https?://[^@]+";
        example = "http://loki.internal:3100";
        description = "Loki's base URL (no credentials in it).";
      };
    };

    database = {
      createLocally = mkOption {
        type = types.bool;
        default = true;
        description = ''
          Run the database on this host: {option}`services.postgresql` with the DocumentDB
          extension set (documentdb, pg_cron, pgvector, postgis, rum; preloaded, with
          `cron.database_name`) and {option}`services.ferretdb` (FerretDB v2, MongoDB wire
          protocol on 127.0.0.1:27017, without authentication since only loopback reaches it).
          Off: set {option}`services.collabry.database.uri` or
          {option}`services.collabry.database.uriFile` (MongoDB, Atlas, a FerretDB elsewhere).
        '';
      };
      uri = mkOption {
        type = types.nullOr types.str;
        default = null;
        example = "mongodb://db.internal:27017";
        description = ''
          URI of an external database, without credentials (`COLLABRY_DATABASE_URI`). With
          {option}`services.collabry.database.createLocally` the module uses the local FerretDB.
        '';
      };
      uriFile = mkOption {
        type = types.nullOr secretPath;
        default = null;
        example = "/run/secrets/collabry-database-uri";
        description = ''
          File holding a database URI with credentials (`mongodb+srv://user:pass@...`); passed as
          credential `database-uri` and preferred over {option}`services.collabry.database.uri`.
        '';
      };
      name = mkOption {
        type = types.str;
        default = "collabry";
        description = "Database name.";
      };
      postgresqlUrlFile = mkOption {
        type = types.nullOr secretPath;
        default = null;
        example = "/run/secrets/collabry-postgresql-url";
        description = ''
          File holding the URL (with credentials) of a PostgreSQL with DocumentDB elsewhere, e.g.
          `postgres://ferretdb:secret@pg.internal:5432/ferretdb`. With
          {option}`services.collabry.database.createLocally` the local FerretDB (still on loopback)
          connects to it and no PostgreSQL runs on this host. Passed to FerretDB as a credential.
        '';
      };
      postgresqlPackage = mkOption {
        type = types.nullOr types.package;
        default = null;
        example = literalExpression "pkgs.postgresql_17";
        description = ''
          PostgreSQL of the local database, or `null` for {option}`services.postgresql.package`'s
          own default. DocumentDB 0.106 supports PostgreSQL 15 to 17; the flake's module sets
          PostgreSQL 17, the version FerretDB 2.5.0 is tested with. A host that already sets
          {option}`services.postgresql.package` keeps its choice.
        '';
      };
      extensions = mkOption {
        type = types.functionTo (types.listOf types.package);
        default = ps: [
          ps.documentdb
          ps.pg_cron
          ps.pgvector
          ps.postgis
          ps.rum
        ];
        defaultText = literalExpression "ps: [ ps.documentdb ps.pg_cron ps.pgvector ps.postgis ps.rum ]";
        description = ''
          The DocumentDB extension set, given the selected PostgreSQL's extension packages (added to
          {option}`services.postgresql.extensions`). The flake's module pins pg_cron 1.6.3 and
          pgvector 0.8.6 here (nix/database.nix).
        '';
      };
    };

    redis = {
      createLocally = mkOption {
        type = types.bool;
        default = true;
        description = ''
          Run `services.redis.servers.collabry` on this host: unix socket only, append-only file,
          a memory cap with `noeviction` (limiter state and unfinished answer streams are never
          evicted). The processes join its group to reach the socket.
        '';
      };
      maxMemory = mkOption {
        type = types.str;
        default = "256mb";
        description = "`maxmemory` of the local Redis.";
      };
      url = mkOption {
        type = types.nullOr types.str;
        default = null;
        example = "redis://10.0.0.5:6379/0";
        description = ''
          URL of an external Redis, without a password (`COLLABRY_REDIS_URL`). With
          {option}`services.collabry.redis.createLocally` the module uses the local socket.
        '';
      };
      urlFile = mkOption {
        type = types.nullOr secretPath;
        default = null;
        example = "/run/secrets/collabry-redis-url";
        description = "File holding a Redis URL with a password; passed as credential `redis-url`.";
      };
    };

    llm = {
      baseUrl = mkOption {
        type = types.nullOr types.str;
        default = null;
        example = "https://api.openai.com/v1";
        description = ''
          OpenAI-compatible API the engine generates with. `null` with the local model off:
          retrieval-only answers.
        '';
      };
      model = mkOption {
        type = types.str;
        default = "smollm2";
        description = "Model name sent to the API (`COLLABRY_LLM_MODEL`).";
      };
      apiKeyFile = mkOption {
        type = types.nullOr secretPath;
        default = null;
        example = "/run/secrets/openai-key";
        description = "File holding the API key; passed to the engine as credential `llm-api-key`.";
      };
      local = {
        enable = mkEnableOption "the local model server (collabry-llm.service: llama.cpp with the embedded SmolLM2 model on 127.0.0.1:8200)";
      }
      // resourceOptions "local model server";
    };

    jwtSecretFile = mkOption {
      type = types.nullOr secretPath;
      default = null;
      example = "/run/secrets/collabry-jwt";
      description = "File holding the JWT signing secret (at least 32 characters); credential `jwt-secret`. Required with gateways.";
    };
    serviceTokenFile = mkOption {
      type = types.nullOr secretPath;
      default = null;
      example = "/run/secrets/collabry-service-token";
      description = "File holding the token gateways and workers present to the engine; credential `service-token`. Required on every host that runs a process.";
    };
    webhookSecretFile = mkOption {
      type = types.nullOr secretPath;
      default = null;
      example = "/run/secrets/collabry-webhook";
      description = "File holding the payment webhook HMAC secret; credential `webhook-secret`. Required with gateways.";
    };

    settings = mkOption {
      type = types.submodule {
        freeformType =
          with types;
          attrsOf (oneOf [
            bool
            int
            float
            str
            path
            (listOf (oneOf [
              int
              str
            ]))
          ]);
        options = {
          COLLABRY_LOG_LEVEL = mkOption {
            type = types.enum [
              "debug"
              "info"
              "warning"
              "error"
            ];
            default = "info";
            description = "Log level.";
          };
          COLLABRY_DRAIN_TIMEOUT = mkOption {
            type = types.ints.positive;
            default = 30;
            description = "Seconds a process may take to drain on SIGTERM; must stay below the units' `TimeoutStopSec=`.";
          };
          COLLABRY_THREADS = mkOption {
            type = types.ints.positive;
            default = 1;
            description = "Threads for BLAS, onnxruntime and FAISS.";
          };
        };
      };
      default = { };
      example = {
        COLLABRY_GLOBAL_LIMIT = "300/900";
        COLLABRY_CORS_ORIGINS = [ "https://app.example.org" ];
      };
      description = ''
        Non-secret settings, written to `/etc/collabry/collabry.env` for every unit (the
        `COLLABRY_*` variables of docs/interfaces.md). Lists are joined with commas, booleans are
        `true`/`false`. Secrets are refused here: use the `*File` options.
      '';
    };

    trustedProxies = mkOption {
      type = types.listOf types.str;
      default = [
        "127.0.0.1"
        "::1"
      ];
      description = "Addresses or CIDRs whose `X-Forwarded-For` the gateways believe (`COLLABRY_TRUSTED_PROXIES`).";
    };

    network.allow = mkOption {
      type = types.listOf types.str;
      default = [ ];
      example = [ "10.0.0.0/24" ];
      description = ''
        Added to the units' `IPAddressAllow=` (they deny everything but localhost): the private
        network of a multi-host deployment, a remote database or Redis.
      '';
    };

    nginx = {
      enable = mkOption {
        type = types.bool;
        default = true;
        description = "Serve Collabry through nginx on this host (rules from the repository's `nginx/`).";
      };
      domain = mkOption {
        type = types.str;
        default = config.networking.fqdnOrHostName;
        defaultText = literalExpression "config.networking.fqdnOrHostName";
        example = "study.example.org";
        description = "Server name of the virtual host.";
      };
      enableACME = mkOption {
        type = types.bool;
        default = false;
        description = "Obtain a certificate for {option}`services.collabry.nginx.domain` (see {option}`security.acme`).";
      };
      forceSSL = mkOption {
        type = types.bool;
        default = false;
        description = "Redirect HTTP to HTTPS.";
      };
      clientMaxBodySize = mkOption {
        type = types.str;
        default = "26m";
        description = "`client_max_body_size`: above the uploads' size limit (25 MB by default).";
      };
      upstreamServers = mkOption {
        type = types.nullOr (types.listOf types.str);
        default = null;
        example = [
          "10.0.0.11:8001"
          "10.0.0.12:8001"
        ];
        description = ''
          Gateway addresses for the upstreams `collabry_api` and `collabry_socketio`; `null`: this
          host's replicas.
        '';
      };
    };

    metrics = {
      allowFrom = mkOption {
        type = types.listOf types.str;
        default = [ ];
        example = [ "10.0.0.9" ];
        description = ''
          Scraper addresses allowed to read the processes' metrics through nginx on
          {option}`services.collabry.metrics.port`: `/gateway/<port>/metrics`, `/engine/metrics`
          (the engine on 8100) and `/engine/<port>/metrics` (every engine, replicas included),
          `/worker/metrics` and `/backup/metrics` (the worker's and the backup's textfiles). Empty:
          metrics stay on loopback.
        '';
      };
      port = mkOption {
        type = types.port;
        default = 9464;
        description = "Port of the metrics endpoint.";
      };
      listenAddress = mkOption {
        type = types.str;
        default = "0.0.0.0";
        description = "Address of the metrics endpoint.";
      };
    };

    openFirewall = mkOption {
      type = types.bool;
      default = false;
      description = ''
        Open nginx's ports (80, and 443 with TLS), the gateway ports when they listen beyond
        loopback, and the metrics port when {option}`services.collabry.metrics.allowFrom` is set.
      '';
    };
  };

  config = mkIf cfg.enable (mkMerge [
    {
      assertions =
        let
          secretAssertions = lib.mapAttrsToList (id: o: {
            assertion = o.value != null -> !(isStorePath o.value);
            message = "services.collabry.${o.path} points into the Nix store (${o.value}), which every user can read; give the path of a file outside it (e.g. /run/secrets/collabry-${id}).";
          }) secretOptions;
          credentialAssertions = lib.concatMap (
            role:
            map (id: {
              assertion = secretOptions ? ${id} && secretFile id != null;
              message =
                if secretOptions ? ${id} then
                  "${unitFiles.${role}} loads credential `${id}`: set services.collabry.${secretOptions.${id}.path}."
                else
                  "${unitFiles.${role}} loads credential `${id}`, which services.collabry does not know; nix/module.nix needs an option for it.";
            }) (declaredCredentials role)
          ) roles;
          # the shortest stop timeout of the long-running units
          stops = builtins.filter (v: v != null) (
            map (r: facts.timeoutStopSec.${r}) [
              "gateway"
              "engine"
            ]
          );
          stop = if stops == [ ] then null else lib.foldl' lib.min (builtins.head stops) stops;
          knownExecStart = {
            gateway = "@COLLABRY_BIN@ gateway --host 127.0.0.1 --port %i";
            engine = "@COLLABRY_BIN@ engine --host 127.0.0.1 --port 8100";
            engineReplica = "@COLLABRY_BIN@ engine --host 127.0.0.1 --port %i";
          };
          execStartAssertion = role: address: {
            assertion = !(isLoopbackAddress address) -> facts.execStart.${role} == knownExecStart.${role};
            message = "services.collabry.${role}.listenAddress replaces the ExecStart= of ${unitFiles.${role}}, which is no longer `${knownExecStart.${role}}`; update nix/module.nix.";
          };
        in
        secretAssertions
        ++ credentialAssertions
        ++ [
          {
            assertion = gatewayOn -> cfg.jwtSecretFile != null && cfg.webhookSecretFile != null;
            message = "services.collabry: gateways need services.collabry.jwtSecretFile and services.collabry.webhookSecretFile.";
          }
          {
            assertion = anyProcess -> cfg.serviceTokenFile != null;
            message = "services.collabry: set services.collabry.serviceTokenFile (shared by gateways, workers and the engine).";
          }
          {
            assertion =
              anyProcess && !cfg.database.createLocally
              -> cfg.database.uri != null || cfg.database.uriFile != null;
            message = "services.collabry.database.createLocally is off: set services.collabry.database.uri or services.collabry.database.uriFile.";
          }
          {
            assertion = cfg.database.postgresqlUrlFile != null -> !(isStorePath cfg.database.postgresqlUrlFile);
            message = "services.collabry.database.postgresqlUrlFile points into the Nix store (${toString cfg.database.postgresqlUrlFile}), which every user can read; give the path of a file outside it.";
          }
          {
            assertion = cfg.database.postgresqlUrlFile != null -> cfg.database.createLocally;
            message = "services.collabry.database.postgresqlUrlFile is for the local FerretDB (services.collabry.database.createLocally); with an external MongoDB-wire database set services.collabry.database.uri or uriFile only.";
          }
          {
            assertion = cfg.database.createLocally -> cfg.database.uri == null && cfg.database.uriFile == null;
            message = "services.collabry.database.uri and uriFile are for an external database; turn services.collabry.database.createLocally off.";
          }
          {
            assertion =
              anyProcess && !cfg.redis.createLocally -> cfg.redis.url != null || cfg.redis.urlFile != null;
            message = "services.collabry.redis.createLocally is off: set services.collabry.redis.url or services.collabry.redis.urlFile.";
          }
          {
            assertion = cfg.redis.createLocally -> cfg.redis.url == null && cfg.redis.urlFile == null;
            message = "services.collabry.redis.url and urlFile are for an external Redis; turn services.collabry.redis.createLocally off.";
          }
          {
            assertion = cfg.llm.local.enable -> cfg.llm.baseUrl == null;
            message = "services.collabry.llm.local.enable serves the model on 127.0.0.1:8200; leave services.collabry.llm.baseUrl unset.";
          }
          {
            assertion = cfg.llm.local.enable -> (cfg.package.passthru.hasLocalLlm or false);
            message = "services.collabry.llm.local.enable needs a package built with withLocalLlm = true.";
          }
          {
            assertion = lib.all (k: lib.hasPrefix "COLLABRY_" k) (builtins.attrNames cfg.settings);
            message = "services.collabry.settings takes COLLABRY_* variables only; found: ${
              lib.concatStringsSep ", " (
                builtins.filter (k: !(lib.hasPrefix "COLLABRY_" k)) (builtins.attrNames cfg.settings)
              )
            }.";
          }
          {
            # (a managed name that is also a secret's, COLLABRY_REDIS_URL, is reported below)
            assertion = !(lib.any (k: lib.elem k secretEnvNames && !(managedSettings ? ${k})) (
              builtins.attrNames cfg.settings
            ));
            message = "services.collabry.settings must not carry secrets or secret file paths; use jwtSecretFile, serviceTokenFile, webhookSecretFile, llm.apiKeyFile, database.uriFile, redis.urlFile.";
          }
          {
            assertion = !(lib.any (k: managedSettings ? ${k}) (builtins.attrNames cfg.settings));
            message = "services.collabry.settings sets ${
              lib.concatStringsSep ", " (
                builtins.filter (k: managedSettings ? ${k}) (builtins.attrNames cfg.settings)
              )
            }, which the module derives from its typed options (database.*, redis.*, engine.url, llm.*, trustedProxies).";
          }
          {
            assertion = stop == null || cfg.settings.COLLABRY_DRAIN_TIMEOUT < stop;
            message = "services.collabry.settings.COLLABRY_DRAIN_TIMEOUT must stay below the units' TimeoutStopSec=${toString stop}.";
          }
          {
            assertion =
              cfg.backup.enable && lib.hasPrefix "s3:" cfg.backup.repository -> cfg.backup.s3CredentialsFile != null;
            message = "services.collabry.backup.repository is an S3 bucket: set services.collabry.backup.s3CredentialsFile.";
          }
          {
            assertion = lib.all (p: p <= 65535) gatewayPorts;
            message = "services.collabry.gateway: basePort + replicas runs past port 65535.";
          }
          (execStartAssertion "gateway" cfg.gateway.listenAddress)
          (execStartAssertion "engine" cfg.engine.listenAddress)
          (execStartAssertion "engineReplica" cfg.engine.listenAddress)
          {
            assertion = lib.all (r: facts.users.${r} == "collabry") roles;
            message = "the shipped units no longer all run as User=collabry, the user services.collabry creates; update nix/module.nix.";
          }
        ];

      warnings =
        optional (
          anyProcess
          && cfg.network.allow == [ ]
          && (
            cfg.database.uriFile != null
            || cfg.redis.urlFile != null
            || (!cfg.database.createLocally && cfg.database.uri != null && !(isLoopbackUrl cfg.database.uri))
            || (!cfg.redis.createLocally && cfg.redis.url != null && !(isLoopbackUrl cfg.redis.url))
          )
        ) "services.collabry: the database or Redis is external but services.collabry.network.allow is empty; the units' IPAddressDeny=any will block it."
        ++ optional (
          !cfg.engine.enable && isLoopbackUrl cfg.engine.url && (gatewayOn || cfg.worker.enable)
        ) "services.collabry: the engine is disabled on this host but services.collabry.engine.url points at loopback."
        ++ optional (useLocalDb && !ferretdbOnLoopback && (ferretdbCfg.settings.FERRETDB_AUTH or "true") == "false")
          "services.collabry: FerretDB listens on ${ferretdbListen} without authentication; only the addresses in systemd.services.ferretdb.serviceConfig.IPAddressAllow can reach it, so list nothing there but trusted peers.";
    }

    (mkIf anyProcess {
      systemd.packages = [ cfg.package ];
      environment.systemPackages = [
        cfg.package
        admin
      ];
      environment.etc."collabry/collabry.env".source = envFile;

      users.users.collabry = {
        isSystemUser = true;
        group = "collabry";
        home = stateDir;
        description = "Collabry appliance";
      };
      users.groups.collabry = { };

      systemd.targets.collabry = {
        overrideStrategy = "asDropin";
        wantedBy = [ "multi-user.target" ];
        wants = localDeps;
        after = localDeps;
      };

      systemd.services = mkMerge [
        { collabry-migrate = dropin "migrate" // { wantedBy = [ "collabry.target" ]; }; }

        (mkIf gatewayOn (
          {
            "collabry-gateway@" = mkMerge [
              (dropin "gateway")
              {
                inherit (cfg.gateway) restartIfChanged;
                serviceConfig = mkMerge [
                  (resources cfg.gateway)
                  (listenOverride "gateway" cfg.gateway.listenAddress "%i")
                ];
              }
            ];
          }
          // lib.listToAttrs (
            map (
              port:
              lib.nameValuePair "collabry-gateway@${toString port}" {
                overrideStrategy = "asDropin";
                wantedBy = [ "collabry.target" ];
                restartTriggers = [ envFile ];
                inherit (cfg.gateway) restartIfChanged;
              }
            ) gatewayPorts
          )
        ))

        (mkIf cfg.engine.enable {
          collabry-engine = mkMerge [
            (dropin "engine")
            {
              wantedBy = [ "collabry.target" ];
              wants = optional cfg.llm.local.enable "collabry-llm.service";
              serviceConfig = mkMerge [
                (resources cfg.engine)
                (listenOverride "engine" cfg.engine.listenAddress "8100")
                # an empty assignment resets the shipped IPAddressDeny=any
                (mkIf cfg.engine.allowOutbound { IPAddressDeny = ""; })
              ];
            }
          ];
        })

        (mkIf (cfg.engine.enable && cfg.engine.replicas > 1) (
          {
            "collabry-engine@" = mkMerge [
              (dropin "engineReplica")
              {
                serviceConfig = mkMerge [
                  (resources cfg.engine)
                  (listenOverride "engine" cfg.engine.listenAddress "%i")
                  (mkIf cfg.engine.allowOutbound { IPAddressDeny = ""; })
                ];
              }
            ];
          }
          // lib.listToAttrs (
            map (
              port:
              lib.nameValuePair "collabry-engine@${toString port}" {
                overrideStrategy = "asDropin";
                wantedBy = [ "collabry.target" ];
                wants = optional cfg.llm.local.enable "collabry-llm.service";
                restartTriggers = [ envFile ];
              }
            ) engineReplicaPorts
          )
        ))

        (mkIf cfg.worker.enable {
          collabry-worker = mkMerge [
            (dropin "worker")
            { serviceConfig = resources cfg.worker; }
          ];
        })

        (mkIf cfg.backup.enable {
          collabry-backup = mkMerge [
            (dropin "backup")
            { serviceConfig.IPAddressAllow = cfg.backup.allow; }
          ];
        })

        (mkIf cfg.llm.local.enable {
          collabry-llm = mkMerge [
            (dropin "llm")
            {
              wantedBy = [ "collabry.target" ];
              serviceConfig = resources cfg.llm.local;
            }
          ];
        })
      ];

      systemd.timers.collabry-worker = mkIf cfg.worker.enable {
        overrideStrategy = "asDropin";
        wantedBy = [ "collabry.target" ];
      };

      services.vector = mkIf cfg.logShipping.enable {
        enable = true;
        journaldAccess = true;
        settings = lib.recursiveUpdate vectorConfig {
          sinks.loki.endpoint = cfg.logShipping.lokiEndpoint;
        };
      };

      systemd.timers.collabry-backup = mkIf cfg.backup.enable {
        overrideStrategy = "asDropin";
        wantedBy = [ "collabry.target" ];
        # an empty assignment resets the shipped OnCalendar=
        timerConfig.OnCalendar = [
          ""
          cfg.backup.schedule
        ];
      };
    })

    (mkIf useLocalPostgresql {
      # PostgreSQL with the DocumentDB extension set (what `CREATE EXTENSION documentdb CASCADE`
      # pulls: documentdb_core, pg_cron, tsm_system_rows (contrib), vector, postgis, rum).
      services.postgresql = {
        enable = true;
        # between services.postgresql's own mkDefault and a host's plain definition
        package = mkIf (cfg.database.postgresqlPackage != null) (
          lib.mkOverride 999 cfg.database.postgresqlPackage
        );
        extensions = cfg.database.extensions;
        settings =
          lib.mapAttrs (_: lib.mkDefault) (
            builtins.removeAttrs pgConf [
              "shared_preload_libraries"
              "cron.database_name"
            ]
          )
          // {
            shared_preload_libraries = pgPreload;
            "cron.database_name" = pgDatabase;
            # DocumentDB connects back to the server for some work: through the socket
            "documentdb.localhost_connection_string" = lib.mkDefault "host=${pgSocketDir}";
          };
        # before services.postgresql's own `local all all peer`: FerretDB's user and the server's
        # own user may log in as the FerretDB role
        authentication = ''
          local ${pgDatabase} ${pgRole} peer map=collabry-ferretdb
        '';
        identMap = ''
          collabry-ferretdb ferretdb ${pgRole}
          collabry-ferretdb postgres ${pgRole}
        '';
      };

      # The extension and FerretDB's role (a superuser, as on Debian hosts: DocumentDB's API needs
      # more than its admin role grants), created once by the PostgreSQL superuser; later starts
      # change nothing. Independent of services.postgresql's ensure* machinery, whose unit layout
      # differs between NixOS releases.
      systemd.services.collabry-documentdb = {
        description = "Collabry: DocumentDB in PostgreSQL for FerretDB";
        requires = [ "postgresql.service" ];
        after = [
          "postgresql.service"
          "postgresql-setup.service"
        ];
        before = [ "ferretdb.service" ];
        requiredBy = [ "ferretdb.service" ];
        path = [ config.services.postgresql.package ];
        serviceConfig = {
          Type = "oneshot";
          RemainAfterExit = true;
          TimeoutStartSec = "5min";
          User = "postgres";
          Group = "postgres";
        };
        script = ''
          set -eu
          psql="psql -v ON_ERROR_STOP=1 -X -q"
          until $psql -d postgres -c "SELECT 1" >/dev/null 2>&1; do sleep 1; done
          if [ -z "$($psql -d postgres -tA -c "SELECT 1 FROM pg_database WHERE datname = '${pgDatabase}'")" ]; then
            $psql -d postgres -c 'CREATE DATABASE "${pgDatabase}"'
          fi
          $psql -d ${pgDatabase} <<'SQL'
          CREATE EXTENSION IF NOT EXISTS documentdb CASCADE;
          DO $do$ BEGIN
            IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '${pgRole}') THEN
              CREATE ROLE "${pgRole}" LOGIN SUPERUSER;
            END IF;
          END $do$;
          SQL
        '';
      };

      services.ferretdb.settings.FERRETDB_POSTGRESQL_URL = "postgres://${pgRole}@/${pgDatabase}?host=${pgSocketDir}";
      systemd.services.ferretdb = {
        requires = [ "collabry-documentdb.service" ];
        after = [ "collabry-documentdb.service" ];
      };
    })

    (mkIf (useLocalDb && cfg.database.postgresqlUrlFile != null) {
      services.ferretdb.settings.FERRETDB_POSTGRESQL_URL_FILE = "/run/credentials/ferretdb.service/postgresql-url";
      systemd.services.ferretdb.serviceConfig = {
        LoadCredential = [ "postgresql-url:${cfg.database.postgresqlUrlFile}" ];
        # the PostgreSQL is elsewhere: loopback (the clients) and the network's addresses
        IPAddressAllow = [ "localhost" ] ++ cfg.network.allow;
      };
    })

    (mkIf useLocalDb {
      services.ferretdb = {
        enable = true;
        settings = {
          FERRETDB_LISTEN_ADDR = lib.mkDefault "127.0.0.1:27017";
          FERRETDB_STATE_DIR = "/var/lib/ferretdb";
          # loopback only, see the listen address: no MongoDB users to manage
          FERRETDB_AUTH = lib.mkDefault "false";
          FERRETDB_DEBUG_ADDR = lib.mkDefault "-";
          FERRETDB_LOG_FORMAT = lib.mkDefault "text";
          FERRETDB_TELEMETRY = "disable";
        };
      };
      # as the shipped systemd/ferretdb.service: loopback only, in the appliance's slice
      systemd.services.ferretdb = {
        before = [ "collabry.target" ];
        serviceConfig = {
          Slice = "system-collabry.slice";
          IPAddressDeny = lib.mkDefault "any";
          IPAddressAllow = lib.mkDefault [ "localhost" ];
        };
      };
    })

    (mkIf useLocalRedis {
      services.redis.servers.collabry = {
        enable = true;
        # no TCP listener: the unix socket only
        port = lib.mkDefault 0;
        appendOnly = true;
        appendFsync = "everysec";
        settings = {
          maxmemory = cfg.redis.maxMemory;
          maxmemory-policy = "noeviction";
        };
      };
      systemd.services.redis-collabry.before = [ "collabry.target" ];
    })

    (mkIf cfg.nginx.enable {
      services.nginx = {
        enable = true;
        # nginx/http.conf: the maps nginx/locations.conf relies on
        commonHttpConfig = facts.httpConf;
        upstreams = {
          collabry_api = {
            servers = lib.genAttrs upstreamServers (_: { max_fails = 0; });
            extraConfig = ''
              least_conn;
              keepalive 32;
            '';
          };
          collabry_socketio = {
            servers = lib.genAttrs upstreamServers (_: { max_fails = 0; });
            extraConfig = ''
              hash $remote_addr consistent;
            '';
          };
        };
        virtualHosts.${cfg.nginx.domain} = {
          inherit (cfg.nginx) enableACME forceSSL;
          # nginx/locations.conf's `location /` and `/assets/` serve files from the server's root
          root = mkIf (cfg.frontend.package != null) cfg.frontend.package;
          extraConfig = ''
            client_max_body_size ${cfg.nginx.clientMaxBodySize};

            # nginx/locations.conf
            ${facts.locationsConf}
          '';
        };
      };
      assertions = [
        {
          assertion = upstreamServers != [ ];
          message = "services.collabry.nginx: no gateways to proxy to; enable gateways on this host or set services.collabry.nginx.upstreamServers.";
        }
        {
          # the NixOS nginx module defines this map itself; a second one is a configuration error
          assertion = facts.upgradeMapCount == 0;
          message = "nginx/http.conf defines $connection_upgrade, which services.nginx defines already; name it differently (as $collabry_connection).";
        }
      ];
    })

    (mkIf metricsOn {
      services.nginx = {
        enable = true;
        virtualHosts.collabry-metrics = {
          listen = [
            {
              addr = cfg.metrics.listenAddress;
              inherit (cfg.metrics) port;
            }
          ];
          extraConfig = ''
            ${lib.concatMapStrings (a: "allow ${a};\n") cfg.metrics.allowFrom}
            deny all;
          '';
          locations = lib.mkMerge [
            (lib.listToAttrs (
              map (
                p:
                lib.nameValuePair "= /gateway/${toString p}/metrics" {
                  proxyPass = "http://127.0.0.1:${toString p}/metrics";
                }
              ) (optionals gatewayOn gatewayPorts)
            ))
            (mkIf cfg.engine.enable {
              "= /engine/metrics".proxyPass = "http://127.0.0.1:8100/metrics";
            })
            # every engine of this host by its port (8100 and each collabry-engine@ replica)
            (lib.listToAttrs (
              map (
                p:
                lib.nameValuePair "= /engine/${toString p}/metrics" {
                  proxyPass = "http://127.0.0.1:${toString p}/metrics";
                }
              ) (optionals cfg.engine.enable ([ 8100 ] ++ engineReplicaPorts))
            ))
            (mkIf cfg.worker.enable {
              "= /worker/metrics" = {
                alias = "${stateDir}/metrics/worker.prom";
                extraConfig = "default_type text/plain;";
              };
            })
            # collabry-backup.service's textfile (the CollabryBackupStale/Failed alerts)
            (mkIf (anyProcess && cfg.backup.enable) {
              "= /backup/metrics" = {
                alias = "${stateDir}/metrics/backup.prom";
                extraConfig = "default_type text/plain;";
              };
            })
          ];
        };
      };
      # the worker's and the backup's textfiles (0644) live in the collabry state directory (0750)
      systemd.services.nginx.serviceConfig.SupplementaryGroups = mkIf (
        cfg.worker.enable || (anyProcess && cfg.backup.enable)
      ) [ "collabry" ];
    })

    (mkIf cfg.openFirewall {
      networking.firewall.allowedTCPPorts =
        optionals cfg.nginx.enable (
          [ 80 ] ++ optional (cfg.nginx.enableACME || cfg.nginx.forceSSL) 443
        )
        ++ optionals (gatewayOn && !(isLoopbackAddress cfg.gateway.listenAddress)) gatewayPorts
        ++ optionals (cfg.engine.enable && !(isLoopbackAddress cfg.engine.listenAddress)) (
          [ 8100 ] ++ engineReplicaPorts
        )
        ++ optional metricsOn cfg.metrics.port;
    })
  ]);

  meta.maintainers = [ ];
}
