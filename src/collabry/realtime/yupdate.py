"""A bounds check of Yjs v1 updates before the CRDT library decodes them.

The Rust decoder pre-allocates collections from the counts written in an update, so a 20-byte
update that claims billions of entries costs hundreds of milliseconds and megabytes before it is
refused, and deeply nested values recurse without limit. This walk over the binary format refuses
such input in linear time: every count must fit in the bytes left, nesting is capped, unknown
content kinds are refused, and the update must end exactly where its delete set ends.

Format (lib0 encoding): ``varuint clients, {varuint structs, varuint client, varuint clock,
struct*}*`` then the delete set ``varuint clients, {varuint client, varuint ranges, {varuint clock,
varuint length}*}*``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

MAX_DEPTH = 32
MAX_CLOCK = 2**53  # lib0 integers are JavaScript-safe; larger ones only come from forged input

# Item info byte: the low five bits name the content; the high bits say which fields follow.
HAS_ORIGIN = 0x80
HAS_RIGHT_ORIGIN = 0x40
HAS_PARENT_SUB = 0x20
CONTENT_MASK = 0x1F
GC, DELETED, JSON, BINARY, STRING, EMBED, FORMAT, TYPE, ANY, DOC, SKIP = range(11)
# Shared type references; XmlElement (3) and XmlHook (5) carry a name.
TYPE_REFS = range(7)
NAMED_TYPE_REFS = (3, 5)


class MalformedUpdate(ValueError):
    """The bytes are not a Yjs v1 update this service accepts."""


@dataclass
class UpdateShape:
    """What the walk learnt: where each client's structs end, and the deleted ranges."""

    ends: dict[int, int] = field(default_factory=dict)  # client -> clock after its last struct
    deletions: list[tuple[int, int, int]] = field(default_factory=list)  # (client, clock, length)


class _Reader:
    __slots__ = ("data", "pos")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    @property
    def left(self) -> int:
        return len(self.data) - self.pos

    def byte(self) -> int:
        if self.pos >= len(self.data):
            raise MalformedUpdate("unexpected end of update")
        value = self.data[self.pos]
        self.pos += 1
        return value

    def varuint(self) -> int:
        value = 0
        shift = 0
        while True:
            b = self.byte()
            value |= (b & 0x7F) << shift
            if b < 0x80:
                break
            shift += 7
            if shift > 63:
                raise MalformedUpdate("integer too long")
        if value > MAX_CLOCK:
            raise MalformedUpdate("integer out of range")
        return value

    def count(self) -> int:
        """A number of following entries: each takes at least one byte."""
        value = self.varuint()
        if value > self.left:
            raise MalformedUpdate("a count exceeds the bytes left")
        return value

    def skip(self, length: int) -> None:
        if length > self.left:
            raise MalformedUpdate("a length exceeds the bytes left")
        self.pos += length

    def varstring(self) -> None:
        self.skip(self.varuint())

    def utf16_length(self) -> int:
        """Skip a string; its length in UTF-16 code units (what Yjs clocks count)."""
        length = self.varuint()
        start = self.pos
        self.skip(length)
        try:
            text = self.data[start : self.pos].decode("utf-8")
        except UnicodeDecodeError:
            raise MalformedUpdate("a string is not UTF-8") from None
        return len(text) + sum(1 for ch in text if ord(ch) > 0xFFFF)


def _any(r: _Reader, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise MalformedUpdate("values nested too deeply")
    tag = r.byte()
    if tag in (127, 126, 121, 120):  # undefined, null, false, true
        return
    if tag == 125:  # signed varint: same continuation rule as varuint
        r.varuint()
    elif tag == 124:
        r.skip(4)
    elif tag in (123, 122):
        r.skip(8)
    elif tag in (119, 116):  # string, bytes
        r.varstring()
    elif tag == 118:  # object
        for _ in range(r.count()):
            r.varstring()
            _any(r, depth + 1)
    elif tag == 117:  # array
        for _ in range(r.count()):
            _any(r, depth + 1)
    else:
        raise MalformedUpdate(f"unknown value tag {tag}")


def _content(r: _Reader, kind: int) -> int:
    """Skip one item's content; return its length in clock units."""
    if kind == DELETED:
        return max(1, r.varuint())
    if kind == JSON:
        n = r.count()
        for _ in range(n):
            r.varstring()
        return max(1, n)
    if kind == BINARY:
        r.varstring()
        return 1
    if kind == STRING:
        return r.utf16_length()
    if kind == EMBED:
        r.varstring()
        return 1
    if kind == FORMAT:
        r.varstring()
        r.varstring()
        return 1
    if kind == TYPE:
        ref = r.varuint()
        if ref not in TYPE_REFS:
            raise MalformedUpdate(f"unsupported shared type {ref}")
        if ref in NAMED_TYPE_REFS:
            r.varstring()
        return 1
    if kind == ANY:
        n = r.count()
        for _ in range(n):
            _any(r, 1)
        return max(1, n)
    if kind == DOC:
        r.varstring()
        _any(r, 1)
        return 1
    raise MalformedUpdate(f"unsupported content kind {kind}")


def _struct(r: _Reader) -> tuple[int, bool]:
    """Skip one struct; its length in clock units, and whether it is real (not a gap marker)."""
    info = r.byte()
    kind = info & CONTENT_MASK
    if kind in (GC, SKIP):
        return r.varuint(), kind == GC
    if info & HAS_ORIGIN:
        r.varuint()
        r.varuint()
    if info & HAS_RIGHT_ORIGIN:
        r.varuint()
        r.varuint()
    if not info & (HAS_ORIGIN | HAS_RIGHT_ORIGIN):
        if r.varuint() == 1:  # parent is a root type, named
            r.varstring()
        else:  # parent is an item id
            r.varuint()
            r.varuint()
        if info & HAS_PARENT_SUB:
            r.varstring()
    return _content(r, kind), True


def inspect_update(update: bytes) -> UpdateShape:
    """Walk ``update``; raise ``MalformedUpdate`` or return its shape."""
    r = _Reader(update)
    shape = UpdateShape()
    for _ in range(r.count()):
        structs = r.count()
        client = r.varuint()
        clock = r.varuint()
        end = 0
        for _ in range(structs):
            length, real = _struct(r)
            clock += length
            if real:
                end = clock
        if clock > MAX_CLOCK:
            raise MalformedUpdate("clock out of range")
        if end:
            shape.ends[client] = max(shape.ends.get(client, 0), end)
    for _ in range(r.count()):
        client = r.varuint()
        for _ in range(r.count()):
            start, length = r.varuint(), r.varuint()
            shape.deletions.append((client, start, length))
    if r.left:
        raise MalformedUpdate("trailing bytes after the delete set")
    return shape


def state_vector(encoded: bytes) -> dict[int, int]:
    """Decode an encoded state vector (``varuint n, {varuint client, varuint clock}*``)."""
    r = _Reader(encoded)
    out = {}
    for _ in range(r.count()):
        client = r.varuint()
        out[client] = r.varuint()
    return out
