"""Socket.IO on the gateway: user rooms, notifications, collaborative boards across replicas.

``realtime_ctx`` runs the hub (a ``cleanup_ctx`` of ``create_app``); ``add_endpoint`` serves it.
"""

from .server import RealtimeHub, add_endpoint, realtime_ctx

__all__ = ["RealtimeHub", "add_endpoint", "realtime_ctx"]
