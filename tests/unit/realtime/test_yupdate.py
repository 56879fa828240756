"""The Yjs update check: every update a real client produces passes; junk is refused cheaply."""

from __future__ import annotations

import os
import random
import time

import pycrdt
import pytest

from collabry.realtime.board_docs import InvalidUpdate, check_update, merge
from collabry.realtime.yupdate import MalformedUpdate, inspect_update, state_vector


def client_updates() -> list[bytes]:
    """Updates touching every content kind a Yjs client writes: text, formats, embeds, maps of
    nested values, arrays, XML, sub-documents, deletions, and their merge."""
    doc = pycrdt.Doc()
    updates: list[bytes] = []
    doc.observe(lambda event: updates.append(event.update))
    text = doc.get("text", type=pycrdt.Text)
    shapes = doc.get("map", type=pycrdt.Map)
    items = doc.get("arr", type=pycrdt.Array)
    xml = doc.get("xml", type=pycrdt.XmlFragment)
    text += "héllo wörld 😀"
    text.format(0, 3, {"bold": True})
    text.insert_embed(2, {"image": "x.png"})
    del text[1:4]
    shapes.update({"n": 1, "f": 1.5, "s": "str", "b": True, "none": None, "big": 2**40, "neg": -7})
    shapes["nested"] = {"a": [1, 2, {"b": "c"}], "d": b"bytes"}
    shapes["sub"] = pycrdt.Map({"k": "v"})
    shapes["subtext"] = pycrdt.Text("inner")
    shapes["doc"] = pycrdt.Doc()
    items.extend([1, "two", [3, 4], {"five": 5}])
    items.append(pycrdt.Array([1, 2]))
    del items[0]
    del shapes["s"]
    xml.children.append(pycrdt.XmlElement("div", {"class": "x"}, [pycrdt.XmlText("hi")]))
    xml.children.append(pycrdt.XmlText("tail"))
    rng = random.Random(3)
    for _ in range(40):
        text.insert(rng.randint(0, len(text)), rng.choice("abc😀é"))
        if rng.random() < 0.3 and len(text) > 2:
            del text[0:1]
    updates.append(doc.get_update())
    updates.append(pycrdt.merge_updates(*updates))
    return updates


def test_every_client_update_passes():
    updates = client_updates()
    assert len(updates) > 50
    for update in updates:
        check_update(update)


@pytest.mark.parametrize(
    "junk",
    [
        b"",
        b"\x00",
        b"\xff" * 10,
        b"\xb7\x9a\xaa\x7b\x3a\xe4\x9d\x9a\xfa\x83",  # claims ~2^40 clients
        b"\x01\xff\xff\xff\xff\x0f\x01\x00",  # claims 2^32 structs
        b"\x01\x01\x01\x00\x08\x01\x01x\x01" + b"\x75\x01" * 64 + b"\x7e\x00",  # arrays nested 64 deep
        b"\x01\x01\x01\x00\x07\x01\x01x\x07\x00",  # a shared type this service does not accept
    ],
)
def test_junk_is_refused(junk):
    with pytest.raises(InvalidUpdate) as refused:
        check_update(junk)
    assert refused.value.code == "invalid_update"


def test_oversized_update_is_refused_before_decoding():
    with pytest.raises(InvalidUpdate) as refused:
        check_update(b"\x00" * 300_000)
    assert refused.value.code == "too_large"


def test_mutated_updates_never_pass_the_check_yet_cost_the_decoder():
    """Whatever passes the walk decodes quickly; what would make the decoder allocate is refused."""
    rng = random.Random(7)
    samples = client_updates()
    slowest = 0.0
    for i in range(3000):
        base = rng.choice(samples)
        if i % 3 == 0:
            junk = os.urandom(rng.randint(1, 200))
        elif i % 3 == 1:
            mutated = bytearray(base)
            for _ in range(rng.randint(1, 4)):
                mutated[rng.randrange(len(mutated))] = rng.randrange(256)
            junk = bytes(mutated)
        else:
            junk = base[: rng.randint(0, len(base))] + os.urandom(rng.randint(0, 5))
        try:
            inspect_update(junk)
        except MalformedUpdate:
            continue
        started = time.perf_counter()
        try:
            pycrdt.Doc().apply_update(junk)
        except Exception:  # noqa: S112 - a decode error is fine; only its cost is measured here
            continue
        finally:
            slowest = max(slowest, time.perf_counter() - started)
    assert slowest < 0.02


def test_state_vector_and_merge_keep_pending_updates():
    doc = pycrdt.Doc()
    text = doc.get("content", type=pycrdt.Text)
    text += "hello"
    first = doc.get_update()
    before = doc.get_state()
    text += " world"
    second = doc.get_update(before)
    assert state_vector(pycrdt.get_state(first)) == {doc.client_id: 5}
    # the second alone cannot be applied yet; the merge keeps it for when the first arrives
    waiting = merge([second])
    rebuilt = pycrdt.Doc()
    rebuilt.apply_update(merge([waiting, first]))
    assert str(rebuilt.get("content", type=pycrdt.Text)) == "hello world"


def test_merge_garbage_collects_a_complete_document():
    doc = pycrdt.Doc()
    text = doc.get("content", type=pycrdt.Text)
    updates = []
    doc.observe(lambda event: updates.append(event.update))
    text += "x" * 5000
    del text[0:4990]
    merged = merge(updates)
    assert len(merged) < 200 < sum(map(len, updates))
    rebuilt = pycrdt.Doc()
    rebuilt.apply_update(merged)
    assert str(rebuilt.get("content", type=pycrdt.Text)) == "x" * 10


def test_the_walk_measures_clocks_like_the_crdt_library():
    """Where each client's structs end (UTF-16 string lengths included) is what the library counts."""
    full = client_updates()[-1]
    doc = pycrdt.Doc()
    doc.apply_update(full)
    assert inspect_update(full).ends == state_vector(doc.get_state())
