"""AppKeys owned by the engine."""

from __future__ import annotations

from aiohttp import web

from .chat import ChatService
from .embeddings.base import Embedder
from .index.store import IndexStore
from .ingest.pipeline import Ingestor
from .llm.client import LLM
from .retrieval import Retriever
from .tasks.tools import ToolRunner

EMBEDDER = web.AppKey("collabry.engine.embedder", Embedder)
STORE = web.AppKey("collabry.engine.store", IndexStore)
INGESTOR = web.AppKey("collabry.engine.ingestor", Ingestor)
RETRIEVER = web.AppKey("collabry.engine.retriever", Retriever)
LLM_CLIENT = web.AppKey("collabry.engine.llm", LLM)
CHAT = web.AppKey("collabry.engine.chat", ChatService)
TOOLS = web.AppKey("collabry.engine.tools", ToolRunner)
BACKGROUND = web.AppKey("collabry.engine.background", set)
