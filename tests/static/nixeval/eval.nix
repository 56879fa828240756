# Evaluates services.collabry (nix/flake-module.nix: nix/module.nix as the flake exports it) for
# one host scenario, without nixpkgs: the project's extension of ../shared/nixeval/eval.nix (see
# README.md here). Real nixpkgs code comes from the harness directory (`harness`): lib, the
# systemd unit option types and renderer, the redis and ferretdb NixOS modules; replicas are
# marked REPLICA (the harness's stubs.nix and nginx-subset.nix, and ./postgresql.nix here).
#   nix-instantiate --eval --strict --json eval.nix --arg harness /path/to/nixeval \
#     --arg project /path/to/project --argstr scenario minimal-secrets
{
  harness,
  project,
  scenario,
  # the version of `pkgs.ferretdb` in the stub: the pinned nixpkgs may carry 1.x or 2.x
  pinFerretdbVersion ? "1.24.0",
  # false: nix/module.nix alone, with only the host's nixpkgs (the stub) behind it
  withFlake ? true,
}:
let
  nixpkgs = harness + "/nixpkgs";
  lib = (import (nixpkgs + "/lib")).extend (
    self: super: {
      # the stored 2023 module files call lib.mdDoc, which the 2026 lib no longer has
      mdDoc = x: x;
    }
  );

  # ---- pkgs stub: fake derivations; any attribute not listed fails with "attribute 'X' missing"
  hash = s: builtins.substring 0 32 (builtins.hashString "sha256" s);
  checkName =
    name:
    if builtins.match "[A-Za-z0-9+_?=-][A-Za-z0-9+._?=-]*" name == null then
      throw "pkgs stub: illegal store path name '${name}'"
    else
      name;
  checkHash =
    what: h:
    if builtins.match "sha256-[A-Za-z0-9+/]{43}=" h == null then
      throw "pkgs stub: ${what}: not an SRI sha256 hash: ${h}"
    else
      h;
  fakeDrv =
    name0: extra:
    let
      name = checkName name0;
      self = {
        type = "derivation";
        inherit name;
        outPath = "/nix/store/${hash name}-${name}";
        drvPath = "/nix/store/${hash ("drv" + name)}-${name}.drv";
        outputs = [ "out" ];
        # like stdenv: the function sees the previous attributes, its result replaces them
        overrideAttrs =
          f:
          let
            new = (self // extra) // (if builtins.isFunction f then f (self // extra) else f);
          in
          fakeDrv (new.name or (if new ? pname && new ? version then "${new.pname}-${new.version}" else name)) (
            builtins.removeAttrs new [
              "type"
              "name"
              "outPath"
              "drvPath"
              "outputs"
              "overrideAttrs"
              "out"
            ]
          );
        meta = { };
      }
      // extra;
    in
    self // { out = self; };
  textDrv = name: text: fakeDrv name { inherit text; };
  pkgDrv =
    pname: version: extra:
    fakeDrv "${pname}-${version}" ({ inherit pname version; } // extra);

  # postgresqlPackages of one PostgreSQL: only attribute names nixpkgs has
  pgExtension = pg: pname: pkgDrv "postgresql-${pname}" "0-pin" { inherit pname; postgresql = pg; };
  mkPostgresql =
    major: version:
    let
      pg = pkgDrv "postgresql" version {
        psqlSchema = major;
        pkgs = lib.genAttrs [
          "documentdb"
          "pg_cron"
          "pgvector"
          "postgis"
          "rum"
        ] (pgExtension pg);
        withPackages =
          f:
          let
            exts = f pg.pkgs;
          in
          builtins.seq (builtins.deepSeq (map (e: e.outPath) exts) null) (
            pkgDrv "postgresql-and-plugins" version {
              installedExtensions = exts;
              inherit (pg) psqlSchema pkgs withPackages;
              withJIT = pg;
              withoutJIT = pg;
            }
          );
        withJIT = pg;
        withoutJIT = pg;
      };
    in
    pg;

  pkgs = {
    inherit lib;
    stdenv.hostPlatform.system = "x86_64-linux";
    writeText = textDrv;
    writeTextDir = name: text: fakeDrv "writeTextDir" { inherit text; };
    writeShellScript = name: text: textDrv name text;
    writeShellScriptBin =
      name: text:
      fakeDrv name {
        inherit text;
        meta.mainProgram = name;
      };
    writeTextFile = a: textDrv a.name a.text;
    runCommand = name: env: script: fakeDrv name (env // { buildCommand = script; });
    callPackage =
      f: args:
      let
        fn = if builtins.isFunction f then f else import f;
      in
      fn (builtins.intersectAttrs (lib.functionArgs fn) pkgs // args);
    systemd = pkgDrv "systemd" "258" { };
    coreutils = fakeDrv "coreutils" { };
    findutils = fakeDrv "findutils" { };
    gnugrep = fakeDrv "gnugrep" { };
    gnused = fakeDrv "gnused" { };
    nginx = fakeDrv "nginx" { };
    unzip = fakeDrv "unzip" { };
    redis = pkgDrv "redis" "8.0.0" { };
    restic = pkgDrv "restic" "0.18.1" { meta.mainProgram = "restic"; };
    vector = pkgDrv "vector" "0.48.0" { meta.mainProgram = "vector"; };
    # pkgs.formats.json: a JSON value type (approximated) and a generator
    formats.json = _: {
      type = lib.types.attrsOf lib.types.anything;
      generate = name: value: textDrv name (builtins.toJSON value);
    };
    ferretdb = pkgDrv "ferretdb" pinFerretdbVersion { };
    postgresql_17 = mkPostgresql "17" "17.6";
    # builders nix/database.nix uses: arguments checked, a derivation named as nixpkgs would
    fetchurl =
      a:
      fakeDrv (baseNameOf a.url) {
        url = a.url;
        hash = checkHash a.url a.hash;
      };
    fetchFromGitHub =
      a:
      fakeDrv "source" {
        inherit (a) owner repo;
        rev = a.tag or a.rev;
        hash = checkHash "${a.owner}/${a.repo}" a.hash;
      };
    buildGoModule =
      a:
      pkgDrv a.pname a.version {
        vendorHash = checkHash "${a.pname} vendorHash" a.vendorHash;
        inherit (a) src;
        meta = a.meta or { };
      };
  };

  # the collabry package as the flake hands it over (package.nix is checked separately)
  collabry = pkgDrv "collabry" "0.1.0" {
    meta.mainProgram = "collabry";
    passthru.hasLocalLlm = true;
  };

  systemdUtils = rec {
    lib = import (nixpkgs + "/nixos/lib/systemd-lib.nix") {
      config = result.config;
      lib = lib';
      inherit pkgs;
    };
    unitOptions = import (nixpkgs + "/nixos/lib/systemd-unit-options.nix") {
      lib = lib';
      systemdUtils = { inherit lib; };
    };
    types = import (harness + "/harness/systemd-types.nix") {
      lib = lib';
      inherit unitOptions;
      systemdLib = lib;
    };
  };
  lib' = lib;

  stubs = import (harness + "/harness/stubs.nix") { inherit lib pkgs systemdUtils; };

  scenarios = import ./scenarios.nix { inherit lib; };

  result = lib.evalModules {
    specialArgs = {
      modulesPath = nixpkgs + "/nixos/modules";
    };
    modules = [
      {
        _module.check = true;
        _module.args = { inherit pkgs; };
      }
      stubs.assertionsModule
      stubs.metaModule
      stubs.systemdModule
      stubs.usersModule
      stubs.environmentModule
      stubs.networkingModule
      (nixpkgs + "/nixos/modules/services/databases/redis.nix")
      (nixpkgs + "/nixos/modules/services/databases/ferretdb.nix")
      ./postgresql.nix
      ./vector.nix
      (harness + "/harness/nginx-subset.nix")
    ]
    ++ (
      if withFlake then
        [ (import (project + "/nix/flake-module.nix") { packagesFor = _: { default = collabry; }; }) ]
      else
        [
          (project + "/nix/module.nix")
          { services.collabry.package = lib.mkDefault collabry; }
        ]
    )
    ++ [ scenarios.${scenario} ];
  };
  config = result.config;

  # generateUnits' placement rule: overrideStrategy "asDropin" -> <unit>.d/overrides.conf;
  # "asDropinIfExists" -> a drop-in too when a package in systemd.packages ships the unit.
  shipped = builtins.attrNames (builtins.readDir (project + "/systemd"));
  shippedByPackage =
    n: builtins.elem n shipped && lib.hasPrefix "collabry" n || n == "system-collabry.slice";
  placement =
    n: u:
    if u.overrideStrategy == "asDropin" || (shippedByPackage n && config.systemd.packages != [ ]) then
      "${n}.d/overrides.conf"
    else
      n;

  interesting =
    n:
    lib.hasPrefix "collabry" n
    || lib.elem n [
      "redis-collabry.service"
      "ferretdb.service"
      "postgresql.service"
      "nginx.service"
    ];
  units = lib.mapAttrs' (
    n: u:
    lib.nameValuePair (placement n u) {
      inherit (u) text wantedBy;
      enable = u.enable;
    }
  ) (lib.filterAttrs (n: _: interesting n) config.systemd.units);

  failed = map (a: a.message) (lib.filter (a: !a.assertion) config.assertions);
  pg = config.services.postgresql;
in
{
  inherit scenario withFlake;
  failedAssertions = failed;
  warnings = config.warnings;
  units = units;
  systemdPackages = map (p: p.name) config.systemd.packages;
  etc = lib.mapAttrs (n: e: {
    source = "${e.source}";
    text = e.source.text or null;
  }) config.environment.etc;
  users = lib.mapAttrs (n: u: { inherit (u) isSystemUser group home description; }) config.users.users;
  groups = builtins.attrNames config.users.groups;
  firewallTCP = config.networking.firewall.allowedTCPPorts;
  tmpfiles = config.systemd.tmpfiles.rules;
  redis = lib.mapAttrs (n: s: {
    inherit (s)
      enable
      port
      bind
      unixSocket
      unixSocketPerm
      user
      group
      ;
    settings = s.settings;
  }) config.services.redis.servers;
  vector = {
    inherit (config.services.vector) enable journaldAccess;
    settings = if config.services.vector.enable then config.services.vector.settings else { };
  };
  ferretdb = {
    inherit (config.services.ferretdb) enable;
    settings = config.services.ferretdb.settings;
    version = config.services.ferretdb.package.version;
  };
  postgresql = {
    inherit (pg) enable;
    package = if pg.enable then pg.package.name else null;
    finalPackage = if pg.enable then pg.finalPackage.name else null;
    extensions = if pg.enable then map (e: e.pname) pg.finalPackage.installedExtensions or [ ] else [ ];
    extensionVersions =
      if pg.enable then
        builtins.listToAttrs (
          map (e: lib.nameValuePair e.pname (e.version or null)) pg.finalPackage.installedExtensions or [ ]
        )
      else
        { };
    settings = if pg.enable then lib.filterAttrs (_: v: v != null) pg.settings else { };
  };
  nginx = {
    inherit (config.services.nginx) enable;
    upstreams = config.services.nginx.upstreams;
    vhosts = lib.mapAttrs (n: v: {
      inherit (v) enableACME forceSSL listen;
      root = if v.root == null then null else "${v.root}";
      locations = lib.mapAttrs (_: l: {
        root = if l.root == null then null else "${l.root}";
        inherit (l) tryFiles index;
      }) v.locations;
    }) config.services.nginx.virtualHosts;
    http = if config.services.nginx.enable then config.services.nginx.renderedHttp else null;
  };
  adminScript =
    (lib.findFirst (p: p.name == "collabry-admin") { text = null; } config.environment.systemPackages)
    .text;
}
