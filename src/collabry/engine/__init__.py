"""The AI engine: ingestion, embeddings, per-user FAISS retrieval, grounded generation, study tools."""
