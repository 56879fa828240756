"""The per-user FAISS index and its snapshots, checked against brute force."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from collabry.engine.index.snapshot import SnapshotError, read_snapshot, write_snapshot
from collabry.engine.index.store import UserIndex

DIM = 16


def unit_rows(n: int, seed: int) -> np.ndarray:
    rows = np.random.default_rng(seed).standard_normal((n, DIM)).astype(np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def metas(source: str, vids: np.ndarray) -> list[tuple[str, int, int | None, str]]:
    return [(f"{source}-chunk-{v}", i, None, f"text of {source} row {i}") for i, v in enumerate(vids.tolist())]


def make_index() -> tuple[UserIndex, dict[str, tuple[np.ndarray, np.ndarray]]]:
    idx = UserIndex("u1", "test-model", DIM)
    data = {}
    for n, source in enumerate(["a", "b", "c", "d"]):
        vids = np.arange(n * 1000, n * 1000 + 50, dtype=np.int64)
        rows = unit_rows(50, n)
        idx.add_source(source, f"ingest-{source}", vids, rows, metas(source, vids))
        data[source] = (vids, rows)
    return idx, data


def brute_force(
    data: dict[str, tuple[np.ndarray, np.ndarray]], query: np.ndarray, allowed: set[str], k: int
) -> list[int]:
    vids = np.concatenate([data[s][0] for s in sorted(allowed)])
    rows = np.concatenate([data[s][1] for s in sorted(allowed)])
    order = np.argsort(-(rows @ query), kind="stable")[:k]
    return [int(v) for v in vids[order]]


@pytest.mark.parametrize("allowed", [{"a", "b", "c", "d"}, {"b"}, {"a", "d"}, {"c", "x"}])
def test_filtered_search_equals_brute_force_over_allowed_rows(allowed: set[str]) -> None:
    idx, data = make_index()
    query = unit_rows(1, 99)[0]
    hits = idx.search(query, allowed, 10)
    assert [h.vid for h in hits] == brute_force(data, query, allowed & set(data), 10)
    for hit in hits:  # each hit carries its own passage
        assert hit.chunk_id == f"{hit.source_id}-chunk-{hit.vid}" and hit.text.startswith(f"text of {hit.source_id}")
    assert {h.source_id for h in hits} <= allowed


def test_unknown_sources_match_nothing() -> None:
    idx, _ = make_index()
    assert idx.search(unit_rows(1, 1)[0], {"other-users-source"}, 10) == []
    assert idx.search(unit_rows(1, 1)[0], set(), 10) == []


def test_remove_and_replace_a_source() -> None:
    idx, data = make_index()
    idx.remove_source("b")
    assert idx.ntotal == 150
    assert all(h.source_id != "b" for h in idx.search(data["b"][1][0], {"a", "b", "c", "d"}, 20))
    new_vids = np.arange(9000, 9010, dtype=np.int64)
    idx.add_source("a", "ingest-a2", new_vids, unit_rows(10, 7), metas("a2", new_vids))
    assert idx.ntotal == 110 and idx.ingests["a"] == "ingest-a2"
    assert {h.vid for h in idx.search(unit_rows(1, 5)[0], {"a"}, 50)} == set(new_vids.tolist())
    assert [m[3] for m in idx.passages_of("a")] == [f"text of a2 row {i}" for i in range(10)]
    assert idx.passages_of("b") == []


def test_snapshot_round_trip_gives_identical_results(tmp_path: Path) -> None:
    idx, _ = make_index()
    idx.remove_source("c")
    idx.seq = 42
    path = tmp_path / "indexes" / "u1.idx"
    write_snapshot(path, idx.snapshot_data())
    assert [p.name for p in path.parent.iterdir()] == ["u1.idx"]  # no temp file left behind
    loaded = UserIndex.from_snapshot(read_snapshot(path))
    assert loaded.seq == 42 and loaded.ingests == idx.ingests and loaded.ntotal == idx.ntotal
    for seed in range(5):
        query = unit_rows(1, 100 + seed)[0]
        for allowed in ({"a", "b", "d"}, {"d"}):
            assert loaded.search(query, allowed, 7) == idx.search(query, allowed, 7)


def test_a_damaged_snapshot_is_refused(tmp_path: Path) -> None:
    idx, _ = make_index()
    path = tmp_path / "u1.idx"
    write_snapshot(path, idx.snapshot_data())
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0x01
    path.write_bytes(bytes(raw))
    with pytest.raises(SnapshotError, match="checksum"):
        read_snapshot(path)
    path.write_bytes(b"not a snapshot")
    with pytest.raises(SnapshotError):
        read_snapshot(path)
