# checks.<system>.unit: the project's unit tests (tests/unit) against the dependency versions the
# package is built with. Plain pytest in a writable copy of the tree, with the model files the
# package uses; no network, no services.
{
  lib,
  runCommand,
  python3,
  collabry,
}:
let
  fs = lib.fileset;
  tree = fs.toSource {
    root = ../..;
    fileset = fs.unions [
      ../../pyproject.toml
      ../../src
      ../../tests
    ];
  };
  python = python3.withPackages (
    ps:
    collabry.pythonDependencies
    ++ (with ps; [
      pytest
      pytest-asyncio
      pytest-aiohttp
      pytest-timeout
    ])
  );
in
runCommand "collabry-unit-tests"
  {
    nativeBuildInputs = [ python ];
    env = with collabry.models.paths; {
      COLLABRY_EMBED_MODEL_FILE = embedding;
      COLLABRY_EMBED_TOKENIZER_FILE = tokenizer;
      COLLABRY_LLM_GGUF_FILE = llm;
      PYTHONDONTWRITEBYTECODE = "1";
    };
  }
  ''
    cp -r ${tree} source
    chmod -R u+w source
    cd source
    export HOME=$TMPDIR
    PYTHONPATH=$PWD/src python -m pytest -p no:cacheprovider tests/unit
    touch $out
  ''
