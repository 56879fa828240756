"""Every AppKey of the engine process (the settings, database and Redis keys every process
shares are in ``collabry.appkeys``)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from aiohttp import web

from .chat import ChatService
from .embeddings.base import Embedder
from .index.store import IndexStore
from .ingest.pipeline import Ingestor
from .llm.client import LLM
from .retrieval import Retriever
from .tasks.tools import ToolRunner

EXECUTOR = web.AppKey("collabry.engine.executor", ThreadPoolExecutor)
EMBEDDER = web.AppKey("collabry.engine.embedder", Embedder)
STORE = web.AppKey("collabry.engine.store", IndexStore)
INGESTOR = web.AppKey("collabry.engine.ingestor", Ingestor)
RETRIEVER = web.AppKey("collabry.engine.retriever", Retriever)
LLM_CLIENT = web.AppKey("collabry.engine.llm", LLM)
CHAT = web.AppKey("collabry.engine.chat", ChatService)
TOOLS = web.AppKey("collabry.engine.tools", ToolRunner)
BACKGROUND = web.AppKey("collabry.engine.background", set)
