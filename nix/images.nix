# OCI images, one per process, streamed by dockerTools (`nix build .#gateway-image && ./result |
# docker load`). Each image holds the collabry closure, CA certificates, /etc/passwd and /etc/group
# with an unprivileged `collabry` user, a world-writable sticky /tmp and an empty state directory
# owned by that user. No shell: the entrypoint is the program itself.
{
  lib,
  dockerTools,
  collabry,
}:
let
  uid = 65532;
  gid = 65532;
  stateDir = "/var/lib/collabry";

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
        mkdir -p tmp .${stateDir}
        chmod 1777 tmp
        chown ${toString uid}:${toString gid} .${stateDir}
        chmod 0750 .${stateDir}
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
        Labels = {
          "org.opencontainers.image.title" = "collabry-${role}";
          "org.opencontainers.image.description" = description;
          "org.opencontainers.image.version" = collabry.version;
          "org.opencontainers.image.licenses" = "AGPL-3.0-or-later";
        };
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
  };

  # Without systemd timers the worker loops over its slots itself; the slot ledger in the database
  # keeps each job to one run per slot however many worker containers run.
  worker-image = mkImage {
    role = "worker";
    cmd = [
      "worker"
      "run-due"
      "--loop"
    ];
    description = "Collabry worker: notifications, subscriptions and cleanup, once per slot";
  };
}
