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
          images = pkgs.callPackage ./nix/images.nix { inherit collabry; };
        in
        {
          default = collabry;
          inherit collabry;
          inherit (images) gateway-image engine-image worker-image;
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
      );

      # `imports = [ collabry.nixosModules.default ];` then `services.collabry.enable = true;`.
      nixosModules.default =
        { pkgs, lib, ... }:
        {
          imports = [ ./nix/module.nix ];
          services.collabry.package = lib.mkDefault self.packages.${pkgs.stdenv.hostPlatform.system}.default;
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
            pkgs.ferretdb
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
