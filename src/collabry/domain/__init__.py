"""The study domain: boards, notebooks and sources, plans and quotas, billing, notifications, planner.

Services here take the database (and, where they need one, an engine client or a Socket.IO emitter)
as arguments and raise ``AppError`` subclasses; they never import aiohttp, so the worker uses them
without loading the gateway. Every access to a user's resource goes through ``policy``.
"""
