"""Index snapshots in the state directory: one file per user, written atomically with a checksum.

Layout: ``MAGIC`` | 8-byte little-endian header length | header (JSON) | payload. The header holds
the user, model, dimension, the log sequence the index reflects, the committed sources, the part
sizes and the sha256 of the payload; the payload is the serialised FAISS index, the rows' vector
ids and source numbers, and their passages (chunk id, order, page, text; JSON). Written to a temp
file in the same directory, fsynced, renamed over the old file, and the directory fsynced: a crash
leaves the old or the new snapshot, never half of one. A snapshot that fails its checksum is
ignored (the index is rebuilt from the database).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

MAGIC = b"COLLABRY-INDEX-1\n"
_SAFE = re.compile(r"^[A-Za-z0-9_-]{1,128}$")


class SnapshotError(Exception):
    pass


@dataclass
class SnapshotData:
    header: dict[str, Any]
    index_bytes: np.ndarray  # uint8, faiss.serialize_index output
    row_vid: np.ndarray  # int64
    row_source: np.ndarray  # int32
    meta_bytes: bytes = b"[]"  # JSON: per row [chunk_id, ord, page, text]


def snapshot_dir(state_dir: Path) -> Path:
    return state_dir / "indexes"


def snapshot_path(state_dir: Path, user_id: str) -> Path:
    name = user_id if _SAFE.match(user_id) else "h-" + hashlib.sha256(user_id.encode()).hexdigest()
    return snapshot_dir(state_dir) / f"{name}.idx"


def write_snapshot(path: Path, data: SnapshotData) -> int:
    """Write atomically; returns the file's size."""
    payload = [
        np.ascontiguousarray(data.index_bytes, dtype=np.uint8).tobytes(),
        np.ascontiguousarray(data.row_vid, dtype=np.int64).tobytes(),
        np.ascontiguousarray(data.row_source, dtype=np.int32).tobytes(),
        data.meta_bytes,
    ]
    digest = hashlib.sha256()
    for part in payload:
        digest.update(part)
    header = {
        **data.header,
        "index_bytes": len(payload[0]),
        "rows": len(data.row_vid),
        "meta_bytes": len(payload[3]),
        "sha256": digest.hexdigest(),
    }
    head = json.dumps(header, separators=(",", ":")).encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with tmp.open("wb") as fh:
            fh.write(MAGIC + struct.pack("<Q", len(head)) + head)
            for part in payload:
                fh.write(part)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    return len(MAGIC) + 8 + len(head) + sum(len(p) for p in payload)


def read_header(path: Path) -> dict[str, Any]:
    """The header alone, without reading or checking the payload."""
    with path.open("rb") as fh:
        start = fh.read(len(MAGIC) + 8)
        if len(start) < len(MAGIC) + 8:
            raise SnapshotError(f"{path}: truncated")
        (length,) = struct.unpack("<Q", start[len(MAGIC) :])
        return _header(start + fh.read(length), path)[0]


def _header(raw: bytes, path: Path) -> tuple[dict[str, Any], int]:
    if not raw.startswith(MAGIC):
        raise SnapshotError(f"{path}: not an index snapshot")
    (length,) = struct.unpack("<Q", raw[len(MAGIC) : len(MAGIC) + 8])
    start = len(MAGIC) + 8
    try:
        header = json.loads(raw[start : start + length])
    except ValueError:
        raise SnapshotError(f"{path}: damaged header") from None
    return header, start + length


def read_snapshot(path: Path) -> SnapshotData:
    """Read and verify a snapshot; ``SnapshotError`` if it is damaged."""
    raw = path.read_bytes()
    header, offset = _header(raw, path)
    view = memoryview(raw)[offset:]
    if hashlib.sha256(view).hexdigest() != header.get("sha256"):
        raise SnapshotError(f"{path}: checksum mismatch")
    n_index, rows, n_meta = int(header["index_bytes"]), int(header["rows"]), int(header["meta_bytes"])
    if len(view) != n_index + rows * 12 + n_meta:
        raise SnapshotError(f"{path}: wrong length")
    index_bytes = np.frombuffer(view[:n_index], dtype=np.uint8)
    row_vid = np.frombuffer(view[n_index : n_index + rows * 8], dtype=np.int64)
    row_source = np.frombuffer(view[n_index + rows * 8 : n_index + rows * 12], dtype=np.int32)
    return SnapshotData(header, index_bytes, row_vid, row_source, bytes(view[n_index + rows * 12 :]))
