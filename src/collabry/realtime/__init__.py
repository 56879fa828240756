"""Real-time core shared by the gateway and the worker: the Socket.IO emitter, the board store
(with its Yjs update check) and the stream waker that SSE relays wait on.

Nothing here imports the gateway, so the worker can push notifications without loading it.
"""
