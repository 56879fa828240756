"""The `openai` embedding backend against an OpenAI-compatible /embeddings endpoint."""

from __future__ import annotations

import numpy as np

from collabry.config import load_settings
from collabry.engine.embeddings import create_embedder
from tests.support.fake_openai import FakeOpenAI


def test_openai_backend_embeds_through_the_endpoint(fake_llm: FakeOpenAI) -> None:
    settings = load_settings(
        {
            "COLLABRY_EMBED_BACKEND": "openai",
            "COLLABRY_LLM_BASE_URL": fake_llm.base_url,
            "COLLABRY_EMBED_MODEL": "embed-test",
        }
    )
    embedder = create_embedder(settings)
    vectors = embedder.embed(["alpha", "beta", "alpha"] * 30)  # more than one request's batch
    assert vectors.shape == (90, 64) and embedder.dim == 64 and embedder.model == "embed-test"
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert np.allclose(vectors[0], vectors[2]) and not np.allclose(vectors[0], vectors[1])
    sent = [r for r in fake_llm.requests if r["path"] == "/v1/embeddings"]
    assert len(sent) == 2 and sent[0]["body"]["model"] == "embed-test"
