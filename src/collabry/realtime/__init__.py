"""Real-time core shared by the gateway and the worker: the Socket.IO emitter and the board store.

Nothing here imports the gateway, so the worker can push notifications without loading it.
"""
