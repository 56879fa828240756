"""The snapshot-age gauge: how long the oldest change not yet written to a snapshot has waited."""

from __future__ import annotations

from collabry.engine.index.store import IndexStore, UserIndex


def test_snapshot_age_tracks_the_oldest_unwritten_change(tmp_path):
    store = IndexStore(None, tmp_path, model="m", dim=4)  # type: ignore[arg-type]
    assert store.snapshot_age() == 0.0
    idx = UserIndex("u1", "m", 4)
    store._cache["u1"] = idx
    assert store.snapshot_age() == 0.0
    idx.dirty = True
    first = idx.dirty_since
    assert first is not None and store.snapshot_age() >= 0.0
    idx.dirty = True  # a later change does not make the oldest one younger
    assert idx.dirty_since == first
    idx.dirty = False
    assert store.snapshot_age() == 0.0 and not idx.dirty
