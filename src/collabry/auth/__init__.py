"""Passwords (argon2id), access tokens (JWT) and rotating refresh tokens."""
