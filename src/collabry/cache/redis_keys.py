"""Every Redis key the application writes, named in one place under the configured prefix."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Keys:
    prefix: str = "collabry:"

    def limit(self, rule: str, subject: str) -> str:
        return f"{self.prefix}rl:{rule}:{subject}"

    def account_lock(self, email: str) -> str:
        return f"{self.prefix}lock:{email}"

    def stream(self, stream_id: str) -> str:
        return f"{self.prefix}stream:{stream_id}"

    def stream_meta(self, stream_id: str) -> str:
        return f"{self.prefix}stream-meta:{stream_id}"

    def stream_cancel(self, stream_id: str) -> str:
        return f"{self.prefix}stream-cancel:{stream_id}"

    def stream_events(self, stream_id: str) -> str:
        """The pub/sub channel on which each event of the stream is published as it is appended."""
        return f"{self.prefix}stream-events:{stream_id}"

    def socketio_channel(self) -> str:
        return f"{self.prefix}socketio"

    def board_channel(self) -> str:
        return f"{self.prefix}boards"

    def board_presence(self, board_id: str) -> str:
        """Hash: socket id -> who is on the board (with an expiry time), across replicas."""
        return f"{self.prefix}presence:{board_id}"

    def quota(self, user_id: str, date: str, kind: str) -> str:
        """Hash {used, seq}: a user's metered units of one kind on one UTC day (cache.quota)."""
        return f"{self.prefix}quota:{kind}:{date}:{user_id}"

    def quota_pending(self) -> str:
        """Set of quota counters changed since the database last received them."""
        return f"{self.prefix}quota-pending"

    def index_head(self, user_id: str) -> str:
        """``<seq>|<writers>|<dim>|<model>``: the head of a user's index log (engine.index.heads)."""
        return f"{self.prefix}index-head:{user_id}"

    def lease(self, name: str) -> str:
        return f"{self.prefix}lease:{name}"

    def revoked_session(self, session_id: str) -> str:
        """Set on revocation, expiring with the last access token the session can have issued."""
        return f"{self.prefix}revoked:{session_id}"

    def user_generation(self, user_id: str) -> str:
        """Bumped whenever the user's public document changes (cache/users.py)."""
        return f"{self.prefix}user-gen:{user_id}"

    def user_document(self, user_id: str) -> str:
        """``<generation>|<public user JSON>``, a short-lived copy for GET /api/auth/me."""
        return f"{self.prefix}user-doc:{user_id}"
