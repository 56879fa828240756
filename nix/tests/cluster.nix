# collabry-cluster: the appliance split over hosts of a private network, as a larger deployment
# runs it. `db` holds FerretDB, Redis, the engine and the local model server; `app1` and `app2`
# run a gateway and the worker timer each; `proxy` runs nginx over both gateways; `client` is
# outside. An app host dies in the middle of an answer; the client resumes on the other one with
# Last-Event-ID and loses nothing.
{
  pkgs,
  module,
  collabry,
}:
let
  inherit (pkgs) lib;
  common = import ./common.nix { inherit pkgs; };
  ip = nodes: name: nodes.${name}.networking.primaryIPAddress;
  # what the collabry units on a host may talk to besides loopback
  peers = nodes: names: map (ip nodes) names;

  # a gateway and the worker timer; database, Redis and engine on `db`
  appHost = nodes: {
    services.collabry = {
      enable = true;
      gateway = {
        replicas = 1;
        listenAddress = "0.0.0.0";
      };
      engine = {
        enable = false;
        url = "http://db:8100";
      };
      database = {
        createLocally = false;
        uri = "mongodb://db:27017";
      };
      redis = {
        createLocally = false;
        url = "redis://db:6379/0";
      };
      nginx.enable = false;
      network.allow = peers nodes [
        "db"
        "proxy"
      ];
      trustedProxies = [
        "127.0.0.1"
        "::1"
        (ip nodes "proxy")
      ];
      openFirewall = true;
    };
  };

  base = {
    imports = [
      module
      common.tools
    ];
    services.collabry.package = collabry;
    virtualisation.memorySize = 1536;
  };
in
pkgs.testers.runNixOSTest {
  name = "collabry-cluster";

  nodes = {
    db =
      { nodes, ... }:
      {
        imports = [
          base
          common.secrets
          common.redisTools
        ];
        services.collabry = {
          enable = true;
          gateway.enable = false;
          worker.enable = false;
          nginx.enable = false;
          engine.listenAddress = "0.0.0.0";
          llm.local.enable = true;
          network.allow = peers nodes [
            "app1"
            "app2"
          ];
          openFirewall = true;
          # long answers, so that one is still being written when its gateway's host dies
          settings.COLLABRY_LLM_MAX_TOKENS = 400;
        };
        # This host also serves the database and Redis to the app hosts (private network only).
        services.ferretdb.settings.FERRETDB_LISTEN_ADDR = lib.mkForce "0.0.0.0:27017";
        systemd.services.ferretdb.serviceConfig.IPAddressAllow = [ "localhost" ] ++ peers nodes [ "app1" "app2" ];
        services.redis.servers.collabry = {
          port = 6379;
          bind = "0.0.0.0";
          settings.protected-mode = "no";
        };
        systemd.services.redis-collabry.serviceConfig = {
          IPAddressDeny = "any";
          IPAddressAllow = [ "localhost" ] ++ peers nodes [ "app1" "app2" ];
        };
        networking.firewall.allowedTCPPorts = [
          27017
          6379
        ];
        virtualisation = {
          memorySize = lib.mkForce 3072;
          cores = 4;
        };
      };

    app1 = { nodes, ... }: {
      imports = [
        base
        common.secrets
        (appHost nodes)
      ];
    };
    app2 = { nodes, ... }: {
      imports = [
        base
        common.secrets
        (appHost nodes)
      ];
    };

    proxy =
      { nodes, ... }:
      {
        imports = [ base ];
        services.collabry = {
          enable = true;
          gateway.enable = false;
          engine.enable = false;
          worker.enable = false;
          nginx.upstreamServers = [
            "app1:8001"
            "app2:8001"
          ];
          openFirewall = true;
        };
        services.nginx.appendHttpConfig = ''
          # which app host served a request (read by the testScript)
          log_format collabry_upstream '$request_method $uri $status upstream=$upstream_addr';
          access_log /var/log/nginx/upstream.log collabry_upstream;
          # a dead host is skipped quickly instead of after the default 60 s
          proxy_connect_timeout 3s;
        '';
      };

    client = {
      imports = [ common.tools ];
    };
  };

  testScript =
    { nodes, ... }:
    common.prelude
    + ''
      APP_HOSTS = {"${ip nodes "app1"}": "app1", "${ip nodes "app2"}": "app2"}
    ''
    + builtins.readFile ./cluster.py;

  meta.timeout = 1800;
}
