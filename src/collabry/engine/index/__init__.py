"""Per-user FAISS indexes: caches of the vectors in the database, snapshotted and caught up by sequence."""
