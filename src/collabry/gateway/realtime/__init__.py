"""Socket.IO on the gateway: user rooms, notifications, collaborative boards across replicas.

A gateway area like the route modules: ``routes`` (the Engine.IO endpoint) and ``setup(app)``.
"""

from .server import HUB, RealtimeHub, routes, setup

__all__ = ["HUB", "RealtimeHub", "routes", "setup"]
