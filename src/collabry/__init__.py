"""Collabry backend: gateway, AI engine and worker."""

__version__ = "0.1.0"
