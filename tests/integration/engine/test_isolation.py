"""A user's retrieval never reaches another user's chunks, whatever ids the caller sends."""

from __future__ import annotations

from tests.support.engine_fixtures import Seed

from .conftest import PHOTOSYNTHESIS, REVOLUTION, Api


async def test_user_b_never_gets_user_a_chunks(api: Api, seed: Seed) -> None:
    alice = await seed.user("Alice")
    alice_nb = await seed.notebook(alice)
    alice_sources = {
        await api.add_text(alice, alice_nb, PHOTOSYNTHESIS, "Alice bio"),
        await api.add_text(alice, alice_nb, REVOLUTION, "Alice history"),
    }
    bob = await seed.user("Bob")
    bob_nb = await seed.notebook(bob)
    bob_source = await api.add_text(bob, bob_nb, "Bob's notes are about cooking pasta al dente in salted water.")

    query = "Where does photosynthesis take place in chloroplasts?"
    attempts = [
        {},
        {"notebookId": bob_nb},
        {"sourceIds": sorted(alice_sources)},
        {"notebookId": bob_nb, "sourceIds": sorted(alice_sources)},
        {"sourceIds": [*sorted(alice_sources), bob_source]},
        {"k": 50},
    ]
    for filters in attempts:
        results = await api.retrieve(bob, query, **filters)
        assert not {r["sourceId"] for r in results} & alice_sources, filters
        assert all("chloroplasts" not in r["text"] for r in results), filters
    assert {r["sourceId"] for r in await api.retrieve(bob, query)} == {bob_source}
    assert await api.retrieve(bob, query, sourceIds=sorted(alice_sources)) == []
    # Alice's notebook id in Bob's name: not found (no hint that it exists).
    await api.retrieve(bob, query, expect=404, notebookId=alice_nb)
    # Alice still gets her own.
    assert (await api.retrieve(alice, query))[0]["sourceId"] in alice_sources


async def test_filters_apply_before_ranking(api: Api, seed: Seed) -> None:
    """Restricting to a weakly matching source still returns its passages: they were not crowded out."""
    user = await seed.user()
    notebook = await seed.notebook(user)
    strong = await api.add_text(user, notebook, PHOTOSYNTHESIS * 3, "Strong")
    weak = await api.add_text(user, notebook, REVOLUTION, "Weak")
    other_nb = await seed.notebook(user)
    elsewhere = await api.add_text(user, other_nb, PHOTOSYNTHESIS, "Elsewhere")

    results = await api.retrieve(user, "photosynthesis chloroplasts", sourceIds=[weak], k=3)
    assert results and {r["sourceId"] for r in results} == {weak}
    results = await api.retrieve(user, "photosynthesis chloroplasts", notebookId=other_nb, k=10)
    assert {r["sourceId"] for r in results} == {elsewhere}
    results = await api.retrieve(user, "photosynthesis chloroplasts", notebookId=notebook, k=10)
    assert elsewhere not in {r["sourceId"] for r in results} and strong in {r["sourceId"] for r in results}


async def test_sources_not_ready_or_deleted_are_not_searched(api: Api, seed: Seed) -> None:
    user = await seed.user()
    notebook = await seed.notebook(user)
    source = await api.add_text(user, notebook, PHOTOSYNTHESIS)
    assert await api.retrieve(user, "photosynthesis")
    await seed.db.sources.update_one({"_id": source}, {"$set": {"deleted_at": "gone"}})
    assert await api.retrieve(user, "photosynthesis") == []
