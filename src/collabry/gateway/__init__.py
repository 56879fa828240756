"""The gateway process: REST API, auth, rate limits, Socket.IO, SSE delivery of AI answers."""
