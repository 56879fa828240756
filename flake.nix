{
  description = "Collabry: collaborative, AI-assisted study platform (backend appliance)";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-26.05";

  outputs =
    { self, nixpkgs }:
    let
      inherit (nixpkgs) lib;
      systems = [
        "x86_64-linux"
        "aarch64-linux"
      ];
      forAllSystems = f: lib.genAttrs systems (system: f nixpkgs.legacyPackages.${system});
    in
    {
      overlays.default = final: _prev: {
        collabry = final.callPackage ./nix/package.nix { };
      };

      packages = forAllSystems (
        pkgs:
        let
          collabry = pkgs.callPackage ./nix/package.nix { };
          images = pkgs.callPackage ./nix/images.nix {
            inherit collabry;
            revision = self.rev or null;
          };
          database = pkgs.callPackage ./nix/database.nix { };
        in
        {
          default = collabry;
          inherit collabry;
          inherit (images) gateway-image engine-image worker-image;
          # FerretDB v2 as the appliance pins it (nix/database.nix)
          inherit (database) ferretdb;
          # PostgreSQL with the DocumentDB extension set, for a database outside NixOS
          postgresql-documentdb = database.postgresql.withPackages database.extensions;
          # Only the model files, e.g. to pre-seed a binary cache.
          models = pkgs.symlinkJoin {
            name = "collabry-models";
            paths = with collabry.models; [
              embedding
              tokenizer
              llm
            ];
          };
        }
        # the built web front end (frontend/), served by the module's nginx at /
        // lib.optionalAttrs (builtins.pathExists ./nix/frontend.nix) {
          frontend = pkgs.callPackage ./nix/frontend.nix { };
        }
      );

      # `imports = [ collabry.nixosModules.default ];` then `services.collabry.enable = true;`.
      # The versions the module needs come from the flake, not from the host's nixpkgs: FerretDB
      # 2.5.0, PostgreSQL 17 (DocumentDB 0.106 supports 15-17), pg_cron 1.6.3, pgvector 0.8.6.
      nixosModules.default = import ./nix/flake-module.nix {
        packagesFor = system: self.packages.${system};
      };

      checks = forAllSystems (
        pkgs:
        let
          collabry = self.packages.${pkgs.stdenv.hostPlatform.system}.default;
          testArgs = {
            inherit pkgs collabry;
            module = self.nixosModules.default;
          };
        in
        {
          package = collabry;
          unit = pkgs.callPackage ./nix/tests/unit.nix { inherit collabry; };
          collabry-single = import ./nix/tests/single.nix testArgs;
          collabry-cluster = import ./nix/tests/cluster.nix testArgs;
        }
      );

      devShells = forAllSystems (pkgs: {
        default = pkgs.mkShell {
          packages = [
            pkgs.redis
            self.packages.${pkgs.stdenv.hostPlatform.system}.ferretdb
            self.packages.${pkgs.stdenv.hostPlatform.system}.postgresql-documentdb
            pkgs.nginx
            pkgs.ruff
            pkgs.nixfmt
            (pkgs.python3.withPackages (
              ps:
              self.packages.${pkgs.stdenv.hostPlatform.system}.default.pythonDependencies
              ++ (with ps; [
                setuptools
                pytest
                pytest-asyncio
                pytest-aiohttp
                pytest-timeout
                pyyaml
              ])
            ))
          ];
          env = with self.packages.${pkgs.stdenv.hostPlatform.system}.default.models.paths; {
            COLLABRY_EMBED_MODEL_FILE = embedding;
            COLLABRY_EMBED_TOKENIZER_FILE = tokenizer;
            COLLABRY_LLM_GGUF_FILE = llm;
          };
        };
      });

      formatter = forAllSystems (pkgs: pkgs.nixfmt);
    };
}
