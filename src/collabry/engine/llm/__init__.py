"""Generation through any OpenAI-compatible server, prompts, and the embedded local model server."""
