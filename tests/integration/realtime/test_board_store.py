"""The board store against FerretDB: durable appends, snapshots, compaction racing with writers."""

from __future__ import annotations

import asyncio
import random

import pycrdt
import pytest

from collabry.db.board_content import SNAPSHOTS, UPDATES
from collabry.db.client import create_client
from collabry.db.migrations import migrate
from collabry.realtime.board_docs import (
    EMPTY_UPDATE,
    append_update,
    board_state,
    compact,
    load_board,
    merge,
)

from .support import content_of


@pytest.fixture
async def db(settings):
    client = create_client(settings)
    database = client[settings.database_name]
    await migrate(database)
    yield database
    await client.drop_database(settings.database_name)
    await client.close()


class Writer:
    """A Yjs client producing one update per edit."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.doc = pycrdt.Doc()
        self.text = self.doc.get("content", type=pycrdt.Text)
        self.shapes = self.doc.get("shapes", type=pycrdt.Map)

    def edit(self, k: int) -> bytes:
        before = self.doc.get_state()
        self.text.insert(len(self.text), f"<{self.n}.{k}>")
        self.shapes[f"w{self.n}"] = k
        if k % 4 == 3:
            del self.text[len(self.text) - 2 : len(self.text)]
        return self.doc.get_update(before)


async def test_empty_board_and_appended_updates(db):
    assert await board_state(db, "nothing-here") == EMPTY_UPDATE
    w = Writer(1)
    for k in range(5):
        await append_update(db, "b1", w.edit(k), user_id="u1")
    state, backlog = await load_board(db, "b1")
    assert backlog == 5
    assert content_of(state) == (str(w.text), {"w1": 4.0})


async def test_compaction_racing_with_writers_and_other_compactors_loses_nothing(db):
    writers = [Writer(n) for n in range(6)]
    produced: list[bytes] = []
    folded: list[int] = []
    stop = asyncio.Event()

    async def write(w: Writer) -> None:
        for k in range(40):
            update = w.edit(k)
            produced.append(update)
            await append_update(db, "race", update, user_id=f"u{w.n}")
            if random.random() < 0.3:
                await asyncio.sleep(0)

    async def compactor() -> None:
        while not stop.is_set():
            folded.append(await compact(db, "race", batch=25))
            await asyncio.sleep(0.005)

    compactors = [asyncio.create_task(compactor()) for _ in range(3)]
    await asyncio.gather(*(write(w) for w in writers))
    stop.set()
    await asyncio.gather(*compactors)
    assert sum(folded) > 0  # compactions ran while the writers wrote
    expected = content_of(merge(produced))
    assert content_of(await board_state(db, "race")) == expected
    while await compact(db, "race"):
        pass
    assert await db[UPDATES].count_documents({"board_id": "race"}) == 0
    snapshots = await db[SNAPSHOTS].find({"board_id": "race"}).to_list(None)
    assert len(snapshots) == 1  # older versions are removed by the compactor that superseded them
    snapshot = snapshots[0]
    assert snapshot["updates_folded"] >= 240  # an update folded twice is counted twice
    assert content_of(snapshot["state"]) == expected
    assert expected[1] == {f"w{n}": 39.0 for n in range(6)}


async def test_an_update_waiting_for_its_dependency_survives_compaction(db):
    doc = pycrdt.Doc()
    text = doc.get("content", type=pycrdt.Text)
    text += "hello"
    first = doc.get_update()
    before = doc.get_state()
    text += " world"  # builds on the first; inserts only, so no delete set points at the gap
    second = doc.get_update(before)
    await append_update(db, "gap", second, user_id="u1")
    assert await compact(db, "gap") == 1
    await append_update(db, "gap", first, user_id="u1")
    assert await compact(db, "gap") == 1
    assert content_of(await board_state(db, "gap"))[0] == "hello world"


async def test_a_snapshot_that_already_holds_an_update_is_not_changed_by_it(db):
    w = Writer(1)
    updates = [w.edit(k) for k in range(3)]
    for u in updates:
        await append_update(db, "twice", u, user_id="u1")
    await compact(db, "twice")
    # a compactor that died after writing the snapshot but before deleting: the updates are back
    for u in updates:
        await append_update(db, "twice", u, user_id="u1")
    assert content_of(await board_state(db, "twice")) == (str(w.text), {"w1": 2.0})
