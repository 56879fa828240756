"""Prometheus metric objects, declared once for every process."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

HTTP_REQUESTS = Counter(
    "collabry_http_requests_total", "HTTP requests handled", ["process", "method", "route", "status"]
)
HTTP_LATENCY = Histogram(
    "collabry_http_request_duration_seconds",
    "HTTP request latency",
    ["process", "method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
HTTP_IN_FLIGHT = Gauge("collabry_http_requests_in_flight", "Requests being handled", ["process"])
RATELIMIT_DECISIONS = Counter(
    "collabry_ratelimit_decisions_total",
    "Rate limiter decisions (allow, deny, fail_open, fail_closed)",
    ["rule", "decision"],
)
AUTH_EVENTS = Counter("collabry_auth_events_total", "Authentication events", ["event"])
ENGINE_UP = Gauge("collabry_engine_up", "Whether an engine answered its last health check or call", ["engine"])
ENGINE_FAILOVERS = Counter(
    "collabry_engine_failovers_total", "Engine calls moved to the next engine (connection refused or 503)"
)
WEBHOOK_REJECTIONS = Counter(
    "collabry_webhook_rejections_total",
    "Payment webhooks refused before processing, by reason (invalid_signature, stale_timestamp)",
    ["reason"],
)
DEPENDENCY_UP = Gauge("collabry_dependency_up", "Whether a dependency answered the last check", ["dependency"])
DB_SLOW_COMMANDS = Counter("collabry_db_slow_commands_total", "Database commands over the slow threshold", ["command"])
AI_STREAMS = Counter("collabry_ai_streams_total", "AI answer streams by outcome", ["outcome"])
SSE_CLIENTS = Gauge("collabry_sse_clients", "Open SSE client connections")
SOCKETIO_CLIENTS = Gauge("collabry_socketio_clients", "Connected Socket.IO clients")
SOCKETIO_EVENTS = Counter(
    "collabry_socketio_events_total", "Socket.IO events received, by event and outcome (ok or error code)",
    ["event", "outcome"],
)
SOCKETIO_DELIVERIES = Counter(
    "collabry_socketio_deliveries_total",
    "Socket.IO broadcast packets delivered to local sockets: written directly (websocket) or queued",
    ["path"],
)
BOARD_UPDATES = Counter("collabry_board_updates_total", "Board updates by outcome", ["outcome"])
