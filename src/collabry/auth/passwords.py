"""argon2id password hashing with parameters from the settings; rehash when they change."""

from __future__ import annotations

import asyncio
import re

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from ..config import Settings

MIN_LENGTH = 10
_CLASSES = (re.compile(r"[a-z]"), re.compile(r"[A-Z]"), re.compile(r"[0-9]"), re.compile(r"[^a-zA-Z0-9]"))


def password_weakness(password: str) -> str | None:
    """Why a password is refused, or None. At least 10 characters, not all of one class."""
    if len(password) < MIN_LENGTH:
        return f"the password must have at least {MIN_LENGTH} characters"
    if sum(1 for cls in _CLASSES if cls.search(password)) < 2:
        return "the password must mix at least two kinds of characters (lower, upper, digits, symbols)"
    return None


class Passwords:
    def __init__(self, settings: Settings) -> None:
        self.hasher = PasswordHasher(
            time_cost=settings.argon2_time_cost,
            memory_cost=settings.argon2_memory_kib,
            parallelism=settings.argon2_parallelism,
        )
        # A real hash to verify against when the email is unknown, so both answers take as long.
        self._dummy = self.hasher.hash("not-a-real-password-0")

    async def hash(self, password: str) -> str:
        # argon2 is CPU-bound by design: keep it off the event loop.
        return await asyncio.to_thread(self.hasher.hash, password)

    async def verify(self, stored_hash: str | None, password: str) -> bool:
        def check() -> bool:
            try:
                return self.hasher.verify(stored_hash or self._dummy, password) and stored_hash is not None
            except (VerificationError, InvalidHashError):
                return False

        return await asyncio.to_thread(check)

    def needs_rehash(self, stored_hash: str) -> bool:
        return self.hasher.check_needs_rehash(stored_hash)
