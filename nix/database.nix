# The database of the appliance on Nix: FerretDB v2 (MongoDB wire protocol) in front of PostgreSQL
# with the DocumentDB extension set. The flake pins what the appliance was tested with, so that
# nothing depends on the versions the pinned nixpkgs happens to carry:
#
#   FerretDB   2.5.0   built here from the Go module proxy's archive (sha256 of the zip; the Go
#                      module vendor tree hashed after `go mod vendor`)
#   pg_cron    1.6.3   nixpkgs' recipe, source pinned to the tag (DocumentDB registers a
#                      '2 seconds' schedule, which pg_cron < 1.5 rejects)
#   pgvector   0.8.6   nixpkgs' recipe, source pinned to the tag
#   PostgreSQL 17      nixpkgs' postgresql_17 (FerretDB 2.5.0 is tested with 17.5)
#   documentdb, postgis, rum: nixpkgs' (the DocumentDB 0.106 line; FerretDB 2.5.0 names
#                      0.106.0 and only warns on another build of it). FerretDB's own DocumentDB
#                      tag needs libbson 1.28, which nixpkgs (mongoc 2.x) does not have.
#
# Every hash below was computed from the archives themselves (docs/nix.md, "Hashes"):
# `nix hash path` of the unpacked tag trees, `nix hash file` of the FerretDB module zip.
{
  lib,
  fetchurl,
  fetchFromGitHub,
  buildGoModule,
  unzip,
  # the PostgreSQL FerretDB 2.5.0 is tested with (build/version/documentdb.go: 17.5); DocumentDB
  # 0.106 supports 15 to 17
  postgresql_17,
}:
let
  ferretdbVersion = "2.5.0";
in
rec {
  postgresql = postgresql_17;

  versions = {
    ferretdb = ferretdbVersion;
    pg_cron = "1.6.3";
    pgvector = "0.8.6";
    # the DocumentDB release FerretDB 2.5.0 is tested with (build/version/documentdb.go)
    documentdb = "0.106.0";
  };

  # PostgreSQL extension names the module preloads and `CREATE EXTENSION documentdb CASCADE` pulls.
  preloadLibraries = [
    "pg_cron"
    "pg_documentdb_core"
    "pg_documentdb"
  ];

  ferretdb = buildGoModule {
    pname = "ferretdb";
    version = ferretdbVersion;

    # The module proxy's archive of github.com/FerretDB/FerretDB/v2@v2.5.0 (the checksum database
    # vouches for it as well: go.sum h1 of the module).
    src = fetchurl {
      url = "https://proxy.golang.org/github.com/!ferret!d!b/!ferret!d!b/v2/@v/v${ferretdbVersion}.zip";
      hash = "sha256-RihrGpapbxXWvENSHjIhziu4TVbg9x1PYSH93OWgf2s=";
    };
    nativeBuildInputs = [ unzip ];
    sourceRoot = "github.com/FerretDB/FerretDB/v2@v${ferretdbVersion}";

    vendorHash = "sha256-4AlbcJOvYvSvT5DoL3+05luBQCatmsFYyd08RJSs7Wg=";

    # cmd/ferretdb/gomaxprocs.go is built only before Go 1.25 (`//go:build !go1.25`): from 1.25 the
    # runtime sizes GOMAXPROCS from the cgroup quota itself, which is what that file did. Newer Go
    # compilers then miss the function; this is its Go 1.25+ counterpart.
    postPatch = ''
      chmod -R u+w .
      cat > cmd/ferretdb/gomaxprocs_go125.go <<'EOF'
      //go:build go1.25

      package main

      import "log/slog"

      // setGOMAXPROCS: the Go 1.25+ runtime is container-aware already.
      func setGOMAXPROCS(_ *slog.Logger) {}
      EOF
    '';

    # build/version embeds version.txt (required) and package.txt
    preBuild = ''
      echo v${ferretdbVersion} > build/version/version.txt
      echo nix > build/version/package.txt
    '';

    subPackages = [ "cmd/ferretdb" ];
    env.CGO_ENABLED = 0;
    ldflags = [
      "-s"
      "-w"
    ];
    doCheck = false;

    meta = {
      description = "MongoDB wire protocol in front of PostgreSQL with DocumentDB";
      homepage = "https://www.ferretdb.com/";
      license = lib.licenses.asl20;
      mainProgram = "ferretdb";
      platforms = lib.platforms.linux;
    };
  };

  # `ps`: the extension set of the selected PostgreSQL (services.postgresql.extensions' argument).
  extensions = ps: [
    (ps.pg_cron.overrideAttrs (_: {
      version = "1.6.3";
      src = fetchFromGitHub {
        owner = "citusdata";
        repo = "pg_cron";
        tag = "v1.6.3";
        hash = "sha256-AI1JbfQ1xcOMo6xUt/7fM3h27RarRo5rUq4hpYQ9YQw=";
      };
    }))
    (ps.pgvector.overrideAttrs (_: {
      version = "0.8.6";
      src = fetchFromGitHub {
        owner = "pgvector";
        repo = "pgvector";
        tag = "v0.8.6";
        hash = "sha256-4PVr0dW6CL3ov1W5BPJU1CAphwOyXwqUoYgWCPXjto8=";
      };
    }))
    ps.documentdb
    ps.postgis
    ps.rum
  ];
}
