"""Access tokens: HS256 JWTs with sub/iat/exp/jti (and sid, the refresh family they came from)."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass

import jwt

from ..config import Settings

ALGORITHM = "HS256"


class InvalidToken(Exception):
    pass


@dataclass(frozen=True, slots=True)
class AccessClaims:
    user_id: str
    session_id: str
    jti: str
    expires_at: int


class AccessTokens:
    def __init__(self, settings: Settings) -> None:
        if not settings.jwt_secret:
            raise ValueError("jwt secret missing")
        self._secret = settings.jwt_secret
        self.ttl = settings.access_token_ttl

    def issue(self, user_id: str, session_id: str) -> str:
        now = int(time.time())
        payload = {
            "sub": user_id,
            "sid": session_id,
            "iat": now,
            "exp": now + self.ttl,
            "jti": secrets.token_urlsafe(12),
            "typ": "access",
        }
        return jwt.encode(payload, self._secret, algorithm=ALGORITHM)

    def verify(self, token: str) -> AccessClaims:
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=[ALGORITHM],
                options={"require": ["sub", "iat", "exp", "jti"]},
            )
        except jwt.PyJWTError as exc:
            raise InvalidToken(str(exc)) from exc
        if claims.get("typ") != "access" or not isinstance(claims["sub"], str):
            raise InvalidToken("not an access token")
        return AccessClaims(claims["sub"], str(claims.get("sid", "")), claims["jti"], int(claims["exp"]))
