"""The engine's own Prometheus metrics (the shared HTTP ones live in collabry.metrics)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

INGESTIONS = Counter("collabry_engine_ingestions_total", "Source ingestions by outcome", ["outcome"])
INGEST_CHUNKS = Counter("collabry_engine_chunks_written_total", "Chunks embedded and stored")
INGEST_SECONDS = Histogram(
    "collabry_engine_ingest_seconds", "Time to ingest one source", buckets=(0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
)
RETRIEVAL_SECONDS = Histogram(
    "collabry_engine_retrieval_seconds",
    "Retrieval latency (embedding + search + passages)",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1),
)
INDEX_MEMORY = Gauge("collabry_engine_index_memory_bytes", "Memory held by loaded FAISS indexes")
INDEX_USERS = Gauge("collabry_engine_index_users", "User indexes loaded in memory")
ANSWERS = Counter("collabry_engine_answers_total", "Chat answers by outcome", ["outcome"])
FIRST_TOKEN_SECONDS = Histogram(
    "collabry_engine_first_token_seconds",
    "Time from request to first answer token",
    buckets=(0.1, 0.25, 0.5, 1, 2, 5, 10),
)
TOOL_RUNS = Counter("collabry_engine_tool_runs_total", "Study tool runs by tool and outcome", ["tool", "outcome"])
INDEX_SNAPSHOT_AGE = Gauge(
    "collabry_index_snapshot_age_seconds",
    "Seconds the oldest index change not yet written to a snapshot has waited (0 when all are written)",
)
