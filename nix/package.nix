# The `collabry` program: one Python application (gateway, engine, worker, admin commands) built
# from pyproject.toml with nixpkgs' Python packages, plus the unit files of systemd/ and the nginx
# rules of nginx/ with their install-time placeholders filled in, so a NixOS host runs the very
# units a Debian host runs.
{
  lib,
  callPackage,
  python3Packages,
  # Where the units look for secret files when nothing overrides their LoadCredential= lines
  # (the NixOS module always does); the same default as the non-Nix install.
  secretsDir ? "/etc/collabry/secrets",
  stateDir ? "/var/lib/collabry",
  # The local OpenAI-compatible model server (`collabry llm`, llama.cpp). Off: smaller closure,
  # and hosts then point services.collabry.llm.baseUrl at another server.
  withLocalLlm ? true,
}:
let
  models = callPackage ./models.nix { };
  fs = lib.fileset;

  # Units of systemd/ for Debian hosts' database; NixOS runs services.postgresql and
  # services.ferretdb instead, so the package does not ship them.
  databaseUnits = [
    "collabry-postgresql.service"
    "ferretdb.service"
  ];

  # pip distribution name -> nixpkgs attribute, where they differ. The one mapping in the project:
  # PyPI's `faiss-cpu` wheel is nixpkgs' `faiss` (built from pkgs.faiss with pythonSupport).
  pipToNix = {
    "faiss-cpu" = "faiss";
  };

  dependencies = with python3Packages; [
    aiohttp
    redis
    pymongo
    openai
    python-socketio
    structlog
    prometheus-client
    pyjwt
    argon2-cffi
    numpy
    faiss
    pycrdt
    onnxruntime
    tokenizers
    pypdf
    pydantic
    uvloop
    orjson
    hiredis
  ];

  # What `python -m llama_cpp.server` imports (llama-cpp-python's `server` extra).
  llmDependencies = with python3Packages; [
    llama-cpp-python
    fastapi
    uvicorn
    sse-starlette
    starlette-context
    pydantic-settings
  ];
in
python3Packages.buildPythonApplication {
  pname = "collabry";
  version = (lib.importTOML ../pyproject.toml).project.version;
  pyproject = true;

  src = fs.toSource {
    root = ../.;
    fileset = fs.unions [
      ../pyproject.toml
      (fs.maybeMissing ../README.md)
      ../src
      ../systemd
      (fs.maybeMissing ../nginx)
    ];
  };

  build-system = [ python3Packages.setuptools ];

  inherit dependencies;
  optional-dependencies.llm = llmDependencies;

  # The pip name stays in pyproject.toml for the non-Nix install; the Nix attribute above
  # provides the same module (`import faiss`) under its own distribution name.
  pythonRemoveDeps = builtins.attrNames pipToNix;

  makeWrapperArgs = [
    "--set-default"
    "COLLABRY_EMBED_MODEL_FILE"
    models.paths.embedding
    "--set-default"
    "COLLABRY_EMBED_TOKENIZER_FILE"
    models.paths.tokenizer
  ]
  ++ lib.optionals withLocalLlm [
    "--set-default"
    "COLLABRY_LLM_GGUF_FILE"
    models.paths.llm
    # `collabry llm` starts llama.cpp's server with the same interpreter; the wrapper's site
    # directories do not reach a child interpreter, PYTHONPATH does.
    "--prefix"
    "PYTHONPATH"
    ":"
    (python3Packages.makePythonPath llmDependencies)
  ];

  postInstall = ''
    install -d $out/lib/systemd/system $out/share/collabry/nginx
    # The appliance's own units, as deploy/install.sh selects them (the database units of systemd/
    # are for Debian hosts; NixOS has services.postgresql and services.ferretdb).
    for unit in systemd/collabry* systemd/system-collabry.slice; do
      case " ${toString databaseUnits} " in *" $(basename "$unit") "*) continue ;; esac
      install -m 0644 "$unit" $out/lib/systemd/system/
    done
    for conf in nginx/*.conf; do
      if [ -f "$conf" ]; then install -m 0644 "$conf" $out/share/collabry/nginx/; fi
    done
    for f in $out/lib/systemd/system/* $out/share/collabry/nginx/*; do
      [ -f "$f" ] || continue
      substituteInPlace "$f" \
        --replace-quiet "@COLLABRY_BIN@" "$out/bin/collabry" \
        --replace-quiet "@SECRETS_DIR@" "${secretsDir}" \
        --replace-quiet "@STATE_DIR@" "${stateDir}"
    done
    # A placeholder nobody fills in is a unit that cannot start: fail here, not on the host.
    if grep -nE '@[A-Z][A-Z0-9_]*@' $out/lib/systemd/system/* $out/share/collabry/nginx/* 2>/dev/null; then
      echo "unsubstituted placeholders in the files above" >&2
      exit 1
    fi
  '';

  # The unit tests run in checks.<system>.unit (they need test-only packages and a writable tree).
  doCheck = false;
  pythonImportsCheck = [
    "collabry"
    "collabry.cli"
  ];

  passthru = {
    inherit models pipToNix;
    hasLocalLlm = withLocalLlm;
    # The runtime Python packages, for environments that import collabry's dependencies
    # (the unit-test check, the development shell).
    pythonDependencies = dependencies ++ lib.optionals withLocalLlm llmDependencies;
    unitDir = "lib/systemd/system";
    nginxDir = "share/collabry/nginx";
  };

  meta = {
    description = "Collabry backend appliance: gateway, AI engine and worker";
    license = lib.licenses.agpl3Plus;
    mainProgram = "collabry";
    platforms = lib.platforms.linux;
  };
}
