# Host configurations evaluated by eval.nix (--argstr scenario NAME). The scenarios of
# ../shared/nixeval/harness/scenarios.nix, changed where the database move changed the VM tests
# (cluster-db) and where FerretDB 2 stopped being an error (neg-ferretdb2 is gone: the module
# accepts any FerretDB the pin or the flake gives it, see pin-* below), plus the database and
# front-end scenarios added with them.
{ lib }:
let
  secrets = {
    jwtSecretFile = "/run/secrets/collabry/jwt-secret";
    serviceTokenFile = "/run/secrets/collabry/service-token";
    webhookSecretFile = "/run/secrets/collabry/webhook-secret";
  };
  # nix/tests/common.nix `secrets`, inlined (its tmpfiles rules included)
  testSecrets = {
    systemd.tmpfiles.rules = [ "d /var/lib/collabry-test-secrets 0700 root root -" ];
    services.collabry = {
      jwtSecretFile = "/var/lib/collabry-test-secrets/jwt-secret";
      serviceTokenFile = "/var/lib/collabry-test-secrets/service-token";
      webhookSecretFile = "/var/lib/collabry-test-secrets/webhook-secret";
      settings = {
        COLLABRY_ACCESS_TOKEN_TTL = 7200;
        COLLABRY_GLOBAL_LIMIT = "100000/900";
        COLLABRY_AI_LIMIT = "1000/60";
      };
    };
  };
  appHost = {
    imports = [ testSecrets ];
    services.collabry = {
      enable = true;
      gateway = { replicas = 1; listenAddress = "0.0.0.0"; };
      engine = { enable = false; url = "http://db:8100"; };
      database = { createLocally = false; uri = "mongodb://db:27017"; };
      redis = { createLocally = false; url = "redis://db:6379/0"; };
      nginx.enable = false;
      network.allow = [ "192.168.1.1" "192.168.1.4" ];
      trustedProxies = [ "127.0.0.1" "::1" "192.168.1.4" ];
      openFirewall = true;
    };
  };
in
{
  # enable = true and nothing else: the assertions must name what is missing
  minimal = { services.collabry.enable = true; };

  # enable + the three required secrets
  minimal-secrets = { services.collabry = { enable = true; } // secrets; };

  # the daily backup to the default local repository, and to an S3-compatible bucket
  backup-local = {
    services.collabry = {
      enable = true;
      backup = { enable = true; passwordFile = "/run/secrets/collabry/backup-password"; };
    } // secrets;
  };
  backup-s3 = {
    services.collabry = {
      enable = true;
      backup = {
        enable = true;
        repository = "s3:https://s3.example.org/backups/collabry";
        passwordFile = "/run/secrets/collabry/backup-password";
        s3CredentialsFile = "/run/secrets/collabry/backup-s3-credentials";
        schedule = "hourly";
        keep = { daily = 14; weekly = 8; monthly = 12; };
        allow = [ "203.0.113.10" ];
      };
    } // secrets;
  };
  # password-reset email through an SMTP server with a login
  mail = {
    services.collabry = {
      enable = true;
      settings.COLLABRY_SMTP_URL = "smtps://collabry@mail.example.org";
      mail.smtpPasswordFile = "/run/secrets/collabry/smtp-password";
    } // secrets;
  };
  # three engines here and one on another host
  engine-replicas = {
    services.collabry = {
      enable = true;
      engine = { replicas = 3; remote = [ "http://10.0.0.6:8100" ]; };
      network.allow = [ "10.0.0.6" ];
    } // secrets;
  };
  # the JSON logs shipped to Loki with Vector
  log-shipping = {
    services.collabry = {
      enable = true;
      logShipping = { enable = true; lokiEndpoint = "http://loki.internal:3100"; };
    } // secrets;
  };
  neg-backup-s3-credentials = {
    services.collabry = {
      enable = true;
      backup = {
        enable = true;
        repository = "s3:https://s3.example.org/backups";
        passwordFile = "/run/secrets/collabry/backup-password";
      };
    } // secrets;
  };

  replicas3 = { services.collabry = { enable = true; gateway.replicas = 3; } // secrets; };

  # external MongoDB and Redis, no local services
  external = {
    services.collabry = {
      enable = true;
      database = { createLocally = false; uri = "mongodb://db.internal:27017"; };
      redis = { createLocally = false; urlFile = "/run/secrets/collabry-redis-url"; };
      network.allow = [ "10.0.0.0/24" ];
    } // secrets;
  };

  # docs/nix.md "A minimal host"
  docs-host = {
    services.collabry = {
      enable = true;
      nginx = { domain = "study.example.org"; enableACME = true; forceSSL = true; };
      openFirewall = true;
      llm = {
        baseUrl = "https://api.openai.com/v1";
        model = "gpt-4o-mini";
        apiKeyFile = "/run/secrets/collabry/openai-key";
      };
    } // secrets;
    security.acme = { acceptTerms = true; defaults.email = "ops@example.org"; };
  };

  local-llm = { services.collabry = { enable = true; llm.local.enable = true; } // secrets; };

  metrics = {
    services.collabry = {
      enable = true;
      metrics.allowFrom = [ "10.0.0.9" ];
      openFirewall = true;
      gateway.memoryMax = "1G";
      engine.cpuQuota = "100%";
    } // secrets;
  };

  # the metrics endpoint of a host with three engines and the backup: a path for every engine
  # and for the backup's textfile
  metrics-replicas = {
    services.collabry = {
      enable = true;
      metrics.allowFrom = [ "10.0.0.9" ];
      engine.replicas = 3;
      backup = { enable = true; passwordFile = "/run/secrets/collabry/backup-password"; };
    } // secrets;
  };

  rolling = { services.collabry = { enable = true; gateway.restartIfChanged = false; } // secrets; };

  # negative cases: each must fail an assertion or a type check
  neg-store-secret = { services.collabry = { enable = true; } // secrets // { jwtSecretFile = "/nix/store/abc-jwt"; }; };
  neg-settings-secret = { services.collabry = { enable = true; settings.COLLABRY_JWT_SECRET = "x"; } // secrets; };
  neg-settings-managed = { services.collabry = { enable = true; settings.COLLABRY_REDIS_URL = "redis://x"; } // secrets; };
  neg-settings-nonprefixed = { services.collabry = { enable = true; settings.FOO = "x"; } // secrets; };
  neg-drain = { services.collabry = { enable = true; settings.COLLABRY_DRAIN_TIMEOUT = 80; } // secrets; };
  neg-postgresql-url-store = {
    services.collabry = { enable = true; database.postgresqlUrlFile = "/nix/store/abc-pg-url"; } // secrets;
  };
  neg-postgresql-url-external = {
    services.collabry = {
      enable = true;
      database = { createLocally = false; uri = "mongodb://db.internal:27017"; postgresqlUrlFile = "/run/secrets/pg-url"; };
      network.allow = [ "10.0.0.0/24" ];
    } // secrets;
  };
  neg-ports = { services.collabry = { enable = true; gateway = { basePort = 65535; replicas = 2; }; } // secrets; };
  neg-llm-both = { services.collabry = { enable = true; llm.local.enable = true; llm.baseUrl = "http://x/v1"; } // secrets; };

  # nix/tests/single.nix node `machine`
  test-single = {
    imports = [ testSecrets ];
    services.collabry = {
      enable = true;
      gateway.replicas = 2;
      llm.local.enable = true;
      openFirewall = true;
      backup = { enable = true; passwordFile = "/var/lib/collabry-test-secrets/backup-password"; };
    };
  };

  # nix/tests/cluster.nix nodes (node addresses stand in for nodes.<n>.networking.primaryIPAddress)
  cluster-db = {
    imports = [ testSecrets ];
    services.collabry = {
      enable = true;
      gateway.enable = false;
      worker.enable = false;
      nginx.enable = false;
      engine.listenAddress = "0.0.0.0";
      llm.local.enable = true;
      network.allow = [ "192.168.1.2" "192.168.1.3" ];
      openFirewall = true;
      settings.COLLABRY_LLM_MAX_TOKENS = 400;
    };
    services.ferretdb.settings.FERRETDB_LISTEN_ADDR = lib.mkForce "0.0.0.0:27017";
    systemd.services.ferretdb.serviceConfig.IPAddressAllow = [ "localhost" "192.168.1.2" "192.168.1.3" ];
    services.redis.servers.collabry = { port = 6379; bind = "0.0.0.0"; settings.protected-mode = "no"; };
    systemd.services.redis-collabry.serviceConfig = {
      IPAddressDeny = "any";
      IPAddressAllow = [ "localhost" "192.168.1.2" "192.168.1.3" ];
    };
    networking.firewall.allowedTCPPorts = [ 27017 6379 ];
  };
  cluster-app = appHost;
  cluster-proxy = {
    services.collabry = {
      enable = true;
      gateway.enable = false;
      engine.enable = false;
      worker.enable = false;
      nginx.upstreamServers = [ "app1:8001" "app2:8001" ];
      openFirewall = true;
    };
    services.nginx.appendHttpConfig = ''
      log_format collabry_upstream '$request_method $uri $status upstream=$upstream_addr';
      access_log /var/log/nginx/upstream.log collabry_upstream;
      proxy_connect_timeout 3s;
    '';
  };

  # ---- the database: PostgreSQL + DocumentDB + FerretDB v2 ----
  # the module alone (no flake) against a pin whose pkgs.ferretdb is 1.x or 2.x: it must evaluate
  # the same way (nothing in it depends on the pin's versions); run with withFlake = false
  pin-ferretdb1 = { services.collabry = { enable = true; } // secrets; };
  pin-ferretdb2 = { services.collabry = { enable = true; } // secrets; };
  # FerretDB on loopback, PostgreSQL with DocumentDB elsewhere
  external-postgresql = {
    services.collabry = {
      enable = true;
      database.postgresqlUrlFile = "/run/secrets/collabry/postgresql-url";
      network.allow = [ "10.0.0.7" ];
    } // secrets;
  };
  # a host that runs PostgreSQL for other things too: its settings and extensions merge
  shared-postgresql = {
    services.collabry = { enable = true; } // secrets;
    services.postgresql = {
      settings.shared_preload_libraries = [ "pg_stat_statements" ];
      extensions = ps: [ ps.postgis ];
    };
  };
  # the web front end at / (the flake's module sets frontend.package to nix/frontend.nix's build)
  frontend =
    { pkgs, ... }:
    {
      services.collabry = {
        enable = true;
        nginx.domain = "study.example.org";
        frontend.package = pkgs.runCommand "collabry-frontend-0.1.0" { } "";
      } // secrets;
    };
}
