# Pieces shared by the VM tests: dummy secrets written at boot (outside the store, as real
# deployments keep them), the client programs, and the prelude of every testScript, which loads
# the scenarios the nspawn system tests run too (tests/system/scenarios.py).
{ pkgs }:
let
  inherit (pkgs) lib;
  secretsDir = "/var/lib/collabry-test-secrets";

  testClient = pkgs.writeTextFile {
    name = "collabry-test-client";
    executable = true;
    destination = "/bin/collabry-test-client";
    text =
      "#!${
        pkgs.python3.withPackages (ps: [
          ps.aiohttp
          ps.python-socketio
          ps.pycrdt
        ])
      }/bin/python3\n"
      + builtins.readFile ./client.py;
  };

  # scenarios.py calls `redis-cli CONFIG GET ...` without arguments; here Redis has no TCP port.
  redisCli = lib.hiPrio (
    pkgs.writeShellScriptBin "redis-cli" ''
      exec ${pkgs.redis}/bin/redis-cli -s /run/redis-collabry/redis.sock "$@"
    ''
  );
in
{
  inherit secretsDir testClient;

  # Same values on every node of a test: the app hosts and the engine share them.
  secrets = {
    systemd.tmpfiles.rules = [
      "d ${secretsDir} 0700 root root -"
      "f ${secretsDir}/jwt-secret 0600 root root - vm-test-jwt-secret-0123456789abcdef0123456789"
      "f ${secretsDir}/service-token 0600 root root - vm-test-service-token-0123456789abcdef"
      "f ${secretsDir}/webhook-secret 0600 root root - vm-test-webhook-secret-0123456789"
    ];
    services.collabry = {
      jwtSecretFile = "${secretsDir}/jwt-secret";
      serviceTokenFile = "${secretsDir}/service-token";
      webhookSecretFile = "${secretsDir}/webhook-secret";
      settings = {
        # the tests outlive the default 15 minutes of an access token, and send more requests
        # from one address than production's global limit allows
        COLLABRY_ACCESS_TOKEN_TTL = 7200;
        COLLABRY_GLOBAL_LIMIT = "100000/900";
        COLLABRY_AI_LIMIT = "1000/60";
      };
    };
  };

  tools = {
    environment.systemPackages = [
      pkgs.curl
      pkgs.python3
      pkgs.iproute2
      testClient
    ];
  };

  redisTools = {
    environment.systemPackages = [ redisCli ];
  };

  # Loads tests/system/scenarios.py as a module (its functions take a machine of this driver).
  prelude = ''
    import importlib.util
    import json

    _spec = importlib.util.spec_from_file_location("scenarios", "${../../tests/system/scenarios.py}")
    assert _spec is not None and _spec.loader is not None
    scenarios = importlib.util.module_from_spec(_spec)
    _spec.loader.exec_module(scenarios)

  '';
}
