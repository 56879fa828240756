"""Event payloads as strict models, and the error acknowledgement every failure turns into."""

from __future__ import annotations

import base64
import binascii
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

BOARD_ID = r"^[A-Za-z0-9_-]{1,64}$"
# base64 of the largest accepted Yjs update (256 KiB) is under 350,000 characters.
MAX_UPDATE_TEXT = 350_000
MAX_AWARENESS_TEXT = 16_384


class Payload(BaseModel):
    """Unknown fields are refused, so a forged ``userId`` in a payload is an error, not ignored."""

    model_config = ConfigDict(extra="forbid", strict=True)


class BoardRef(Payload):
    boardId: str = Field(pattern=BOARD_ID)


class BoardUpdate(BoardRef):
    update: str = Field(min_length=1, max_length=MAX_UPDATE_TEXT)


class BoardAwareness(BoardRef):
    update: str = Field(min_length=1, max_length=MAX_AWARENESS_TEXT)


M = TypeVar("M", bound=Payload)


class EventError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def error_ack(code: str, message: str) -> dict[str, Any]:
    return {"ok": False, "error": {"code": code, "message": message}}


def parse(model: type[M], args: tuple[Any, ...]) -> M:
    if len(args) != 1 or not isinstance(args[0], dict):
        raise EventError("invalid_request", "the event takes one JSON object")
    try:
        return model.model_validate(args[0])
    except ValidationError as exc:
        fields = ", ".join(".".join(str(p) for p in e["loc"]) or "(payload)" for e in exc.errors())
        too_long = any(e["type"] == "string_too_long" and e["loc"] == ("update",) for e in exc.errors())
        if too_long:
            raise EventError("too_large", "the update is too large") from None
        raise EventError("invalid_request", f"invalid fields: {fields}") from None


def decode_base64(text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise EventError("invalid_update", "the update is not valid base64") from None


def encode_base64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


# -- Yjs awareness updates (y-protocols): varuint count, then per client varuint id, varuint clock,
# varstring state (JSON; "null" when the client is gone).

MAX_AWARENESS_CLIENTS = 16


def _read_varuint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(data) or shift > 49:
            raise ValueError("truncated varuint")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7


def _varuint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def awareness_entries(update: bytes) -> list[tuple[int, int, bool]]:
    """(client id, clock, removed) of each entry; ValueError when it is not an awareness update."""
    count, pos = _read_varuint(update, 0)
    if count > MAX_AWARENESS_CLIENTS:
        raise ValueError("too many awareness entries")
    entries = []
    for _ in range(count):
        client, pos = _read_varuint(update, pos)
        clock, pos = _read_varuint(update, pos)
        length, pos = _read_varuint(update, pos)
        state = update[pos : pos + length]
        if len(state) != length:
            raise ValueError("truncated awareness state")
        pos += length
        entries.append((client, clock, state == b"null"))
    if pos != len(update):
        raise ValueError("trailing bytes")
    return entries


def awareness_removal(clients: dict[int, int]) -> bytes:
    """The update that tells the other peers these clients are gone (a newer clock, state null)."""
    out = bytearray(_varuint(len(clients)))
    for client, clock in clients.items():
        out += _varuint(client) + _varuint(clock + 1) + _varuint(4) + b"null"
    return bytes(out)
