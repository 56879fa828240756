"""Database layer: the async client, index migrations and one repository module per collection."""
