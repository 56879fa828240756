"""Redis: client, key names, rate limiter, answer stream buffers."""
