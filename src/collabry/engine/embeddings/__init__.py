"""Embedding backends behind one small interface (``Embedder``); ``create_embedder`` picks one."""

from __future__ import annotations

from ...config import ConfigError, Settings
from .base import Embedder, EmbedderError


def create_embedder(settings: Settings) -> Embedder:
    """The configured backend; ``local`` loads its model files now (no network, ever)."""
    if settings.embed_backend == "openai":
        from .openai import OpenAIEmbedder

        base_url = settings.embed_base_url or settings.llm_base_url
        if not base_url:
            raise ConfigError("COLLABRY_EMBED_BASE_URL", "the openai embedding backend needs a base URL")
        return OpenAIEmbedder(base_url, settings.embed_model, settings.llm_api_key, timeout=settings.llm_timeout)
    from .local import LocalEmbedder

    return LocalEmbedder.from_settings(settings)


__all__ = ["Embedder", "EmbedderError", "create_embedder"]
