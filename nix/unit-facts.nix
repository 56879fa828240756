# Facts the NixOS module takes from the repository's systemd/ and nginx/ files, read at evaluation
# time. Builtins only (no nixpkgs), so `nix-instantiate --eval --strict --json nix/unit-facts.nix`
# works anywhere and tests/static/test_nix.py compares its answers with the files.
{
  systemdDir ? ../systemd,
  nginxDir ? ../nginx,
  deployDir ? ../deploy,
}:
let
  lines = text: builtins.filter builtins.isString (builtins.split "\n" text);
  hasPrefix = p: s: builtins.substring 0 (builtins.stringLength p) s == p;
  dropPrefix =
    p: s: builtins.substring (builtins.stringLength p) (builtins.stringLength s - builtins.stringLength p) s;
  last = l: if l == [ ] then null else builtins.elemAt l (builtins.length l - 1);

  unitFiles = {
    gateway = "collabry-gateway@.service";
    engine = "collabry-engine.service";
    engineReplica = "collabry-engine@.service";
    worker = "collabry-worker.service";
    migrate = "collabry-migrate.service";
    llm = "collabry-llm.service";
    backup = "collabry-backup.service";
  };

  # `Key=value` settings of a unit, in file order (repeated keys keep every value).
  values =
    role: key:
    map (dropPrefix "${key}=") (
      builtins.filter (hasPrefix "${key}=") (lines (builtins.readFile (systemdDir + "/${unitFiles.${role}}")))
    );

  credentialId = v: builtins.head (builtins.filter builtins.isString (builtins.split ":" v));

  seconds =
    v:
    let
      m = if v == null then null else builtins.match "([0-9]+)s?" v;
    in
    if m == null then null else builtins.fromJSON (builtins.head m);

  # nginx/http.conf defines $connection_upgrade, which NixOS's nginx module defines as well.
  upgradeMapRegex = "map[[:space:]]+[$]http_upgrade[[:space:]]+[$]connection_upgrade[[:space:]]*[{][^}]*[}][[:space:]]*";
  httpConf = builtins.readFile (nginxDir + "/http.conf");

  # deploy/postgresql.conf, the database settings a Debian host appends to its postgresql.conf:
  # `name = value` lines (comments and blank lines skipped); quoted values lose their quotes,
  # integers become numbers, shared_preload_libraries a list.
  postgresqlConfFile = deployDir + "/postgresql.conf";
  confLine = builtins.match "[[:space:]]*([A-Za-z_][A-Za-z0-9_.]*)[[:space:]]*=[[:space:]]*('[^']*'|[^'#[:space:]]+)[[:space:]]*(#.*)?";
  confValue =
    name: raw:
    let
      quoted = builtins.match "'(.*)'" raw;
      v = if quoted == null then raw else builtins.head quoted;
    in
    if name == "shared_preload_libraries" then
      builtins.filter (x: x != "") (
        map (x: builtins.head (builtins.match "[[:space:]]*([^[:space:]]*)[[:space:]]*" x)) (
          builtins.filter builtins.isString (builtins.split "," v)
        )
      )
    else if quoted == null && builtins.match "[0-9]+" v != null then
      builtins.fromJSON v
    else
      v;
  postgresqlSettings =
    if builtins.pathExists postgresqlConfFile then
      builtins.listToAttrs (
        map (
          m: {
            name = builtins.elemAt m 0;
            value = confValue (builtins.elemAt m 0) (builtins.elemAt m 1);
          }
        ) (builtins.filter (m: m != null) (map confLine (lines (builtins.readFile postgresqlConfFile))))
      )
    else
      { };
in
{
  inherit unitFiles;
  credentials = builtins.mapAttrs (role: _: map credentialId (values role "LoadCredential")) unitFiles;
  execStart = builtins.mapAttrs (role: _: last (values role "ExecStart")) unitFiles;
  timeoutStopSec = builtins.mapAttrs (role: _: seconds (last (values role "TimeoutStopSec"))) unitFiles;
  users = builtins.mapAttrs (role: _: last (values role "User")) unitFiles;

  inherit httpConf;
  upgradeMapCount = (builtins.length (builtins.split upgradeMapRegex httpConf) - 1) / 2;
  locationsConf = builtins.readFile (nginxDir + "/locations.conf");
  inherit postgresqlSettings;
}
