"""Turning an uploaded file into chunks: parse (PDF, text, Markdown), normalise, chunk, embed, store."""
