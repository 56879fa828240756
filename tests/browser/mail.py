"""A real SMTP server for a browser test module's stack (aiosmtpd on loopback), and the links in
what it receives."""

from __future__ import annotations

import email
import email.policy
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller

from collabry.devstack.components import free_port

PUBLIC_URL = "https://study.example.org"  # links in the emails point here; the tests open their path


class Inbox:
    """aiosmtpd handler keeping every delivered message; tests wait for the one sent to an address."""

    def __init__(self) -> None:
        self._messages: list[EmailMessage] = []
        self._arrived = threading.Condition()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self._arrived:
            self._messages.append(message)  # type: ignore[arg-type]
            self._arrived.notify_all()
        return "250 OK"

    def take(self, to: str, timeout: float = 30) -> EmailMessage:
        """The oldest message to ``to`` not taken yet, waiting for it to arrive."""
        deadline = time.monotonic() + timeout
        with self._arrived:
            while True:
                for message in self._messages:
                    if message["To"] == to:
                        self._messages.remove(message)
                        return message
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no email to {to} within {timeout} s")
                self._arrived.wait(left)

    def sent_to(self, to: str) -> int:
        with self._arrived:
            return sum(1 for m in self._messages if m["To"] == to)


@contextmanager
def smtp_server() -> Iterator[tuple[Inbox, dict[str, str]]]:
    """An SMTP server and the stack environment that sends through it."""
    inbox, port = Inbox(), free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield (
            inbox,
            {
                "COLLABRY_SMTP_URL": f"smtp://127.0.0.1:{port}",
                "COLLABRY_MAIL_FROM": "Collabry <study@example.org>",
                "COLLABRY_PUBLIC_URL": PUBLIC_URL,
            },
        )
    finally:
        controller.stop()


def link_path(message: EmailMessage, page: str) -> str:
    """The path and query of the ``/page?token=...`` link in a message, to open on the test stack."""
    body = message.get_content()
    match = re.search(re.escape(PUBLIC_URL) + r"(/" + re.escape(page) + r"\?token=[A-Za-z0-9_%-]+)", body)
    assert match, body
    return match.group(1)
