# OCI images, one per process, streamed by dockerTools (`nix build .#gateway-image && ./result |
# docker load`). Each image holds the collabry closure, CA certificates, /etc/passwd and /etc/group
# with an unprivileged `collabry` user, a world-writable sticky /tmp and an empty state directory
# owned by that user. No shell: the entrypoint is the program itself, and the health check is the
# closure's own Python (no curl in the image). deploy/compose.yaml runs the three together.
{
  lib,
  dockerTools,
  python3,
  collabry,
  # the flake's revision, when it has one (a clean checkout), for org.opencontainers.image.revision
  revision ? null,
}:
let
  uid = 65532;
  gid = 65532;
  stateDir = "/var/lib/collabry";
  source = "https://github.com/collabry/collabry";
  python = "${python3}/bin/python3";
  seconds = n: n * 1000000000; # Docker's image config counts durations in nanoseconds

  # Docker's image config `Healthcheck` (the OCI config has no such field; Docker and Podman read
  # it from the image, `docker inspect` shows it): exit 0 healthy, 1 unhealthy.
  httpHealthcheck = port: {
    Test = [
      "CMD"
      python
      "-c"
      "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:${toString port}/health', timeout=4).status == 200 else 1)"
    ];
    Interval = seconds 15;
    Timeout = seconds 5;
    StartPeriod = seconds 120;
    Retries = 3;
  };

  nss = dockerTools.fakeNss.override {
    extraPasswdLines = [
      "collabry:x:${toString uid}:${toString gid}:Collabry:${stateDir}:/sbin/nologin"
    ];
    extraGroupLines = [ "collabry:x:${toString gid}:" ];
  };

  mkImage =
    {
      role,
      cmd,
      ports ? [ ],
      description,
      healthcheck,
    }:
    dockerTools.streamLayeredImage {
      name = "collabry-${role}";
      tag = collabry.version;
      contents = [
        nss
        dockerTools.caCertificates
      ];
      # Runs in the image's customisation layer under fakeroot: ownership and modes stick.
      fakeRootCommands = ''
        mkdir -p tmp .${stateDir}/metrics
        chmod 1777 tmp
        chown ${toString uid}:${toString gid} .${stateDir} .${stateDir}/metrics
        chmod 0750 .${stateDir}
        chmod 0755 .${stateDir}/metrics
      '';
      config = {
        User = "${toString uid}:${toString gid}";
        Entrypoint = [ (lib.getExe collabry) ];
        Cmd = cmd;
        WorkingDir = stateDir;
        Env = [
          "COLLABRY_STATE_DIR=${stateDir}"
          "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt"
          "TMPDIR=/tmp"
          "PYTHONUNBUFFERED=1"
        ];
        ExposedPorts = lib.genAttrs (map (p: "${toString p}/tcp") ports) (_: { });
        Volumes = {
          ${stateDir} = { };
        };
        StopSignal = "SIGTERM";
        Healthcheck = healthcheck;
        Labels = {
          "org.opencontainers.image.title" = "collabry-${role}";
          "org.opencontainers.image.description" = description;
          "org.opencontainers.image.version" = collabry.version;
          "org.opencontainers.image.ref.name" = "collabry-${role}:${collabry.version}";
          "org.opencontainers.image.licenses" = "AGPL-3.0-or-later";
          "org.opencontainers.image.source" = source;
          "org.opencontainers.image.url" = source;
          "org.opencontainers.image.documentation" = "${source}/blob/main/docs/nix.md";
          "org.opencontainers.image.vendor" = "Collabry";
        }
        // lib.optionalAttrs (revision != null) { "org.opencontainers.image.revision" = revision; };
      };
    };
in
{
  # Containers have their own network namespace: listen on all of its addresses.
  gateway-image = mkImage {
    role = "gateway";
    cmd = [
      "gateway"
      "--host"
      "0.0.0.0"
      "--port"
      "8001"
    ];
    ports = [ 8001 ];
    description = "Collabry gateway: REST API, Socket.IO and SSE delivery";
    healthcheck = httpHealthcheck 8001;
  };

  engine-image = mkImage {
    role = "engine";
    cmd = [
      "engine"
      "--host"
      "0.0.0.0"
      "--port"
      "8100"
    ];
    ports = [ 8100 ];
    description = "Collabry engine: ingestion, embeddings, retrieval and generation";
    healthcheck = httpHealthcheck 8100;
  };

  # Without systemd timers the worker loops over its slots itself; the slot ledger in the database
  # keeps each job to one run per slot however many worker containers run.
  worker-image = mkImage {
    role = "worker";
    cmd = [
      "worker"
      "run-due"
      "--loop"
      "--metrics-file"
      "${stateDir}/metrics/worker.prom"
    ];
    description = "Collabry worker: notifications, subscriptions and cleanup, once per slot";
    # the loop rewrites its metrics file after every pass (once a minute): healthy while it is fresh
    healthcheck = {
      Test = [
        "CMD"
        python
        "-c"
        "import os, sys, time; p = '${stateDir}/metrics/worker.prom'; sys.exit(0 if os.path.exists(p) and time.time() - os.stat(p).st_mtime < 180 else 1)"
      ];
      Interval = seconds 30;
      Timeout = seconds 5;
      StartPeriod = seconds 150;
      Retries = 3;
    };
  };
}
