"""Ingestion end to end through the engine's internal API: real FerretDB, Redis and embedding model."""

from __future__ import annotations

import numpy as np

from collabry.appkeys import SETTINGS
from collabry.db.client import utcnow
from tests.support.documents import corrupt_pdf, encrypted_pdf, make_pdf
from tests.support.engine_fixtures import Seed

from .conftest import ALGORITHMS, PHOTOSYNTHESIS, REVOLUTION, Api

MITOCHONDRIA = (
    "Mitochondria are the organelles that produce most of the cell's ATP through aerobic respiration. "
    "They have a double membrane, and the inner membrane is folded into cristae. "
    "Mitochondria carry their own small circular DNA, inherited from the mother. "
    "The Krebs cycle takes place in the mitochondrial matrix."
)


async def test_pdf_markdown_and_text_become_ready_chunks(api: Api, seed: Seed) -> None:
    user = await seed.user()
    notebook = await seed.notebook(user)
    pdf = await seed.source(user, notebook, "Biology.pdf", kind="pdf")
    md = await seed.source(user, notebook, "Algorithms.md", kind="markdown")
    txt = await seed.source(user, notebook, "History", kind="text")

    await api.ingest(pdf, user, notebook, make_pdf([PHOTOSYNTHESIS, MITOCHONDRIA]), "application/pdf")
    await api.ingest(md, user, notebook, ALGORITHMS.encode(), "text/markdown; charset=utf-8")
    await api.ingest_text(txt, user, notebook, REVOLUTION)

    for source_id in (pdf, md, txt):
        doc = await seed.wait_status(source_id)
        assert doc["status"] == "ready" and doc["error"] is None, doc
        chunks = [c async for c in seed.db.chunks.find({"source_id": source_id}).sort("ord", 1)]
        assert len(chunks) == doc["chunks"] >= 1
        assert [c["ord"] for c in chunks] == list(range(len(chunks)))
        for chunk in chunks:
            assert chunk["user_id"] == user and chunk["notebook_id"] == notebook
            assert chunk["model"] == "all-MiniLM-L6-v2-int8" and chunk["dim"] == 384
            vector = np.frombuffer(chunk["vector"], dtype=np.float32)
            assert vector.shape == (384,) and abs(float(np.linalg.norm(vector)) - 1) < 1e-4

    pdf_chunks = [c async for c in seed.db.chunks.find({"source_id": pdf})]
    assert {c["page"] for c in pdf_chunks} == {1, 2}
    md_text = " ".join([c["text"] async for c in seed.db.chunks.find({"source_id": md})])
    assert "Binary search finds an item in a sorted array" in md_text
    assert "#" not in md_text and "](" not in md_text and "**" not in md_text
    seqs = [c["seq"] async for c in seed.db.chunks.find({"user_id": user})]
    assert len(seqs) == len(set(seqs))

    results = await api.retrieve(user, "Where does photosynthesis take place?", notebookId=notebook)
    assert results[0]["sourceId"] == pdf and results[0]["title"] == "Biology.pdf"
    assert "chloroplasts" in results[0]["text"]
    assert set(results[0]) >= {"sourceId", "title", "chunkId", "score", "text"}
    results = await api.retrieve(user, "When did Napoleon take power?", notebookId=notebook, k=1)
    assert [r["sourceId"] for r in results] == [txt]


async def test_deleted_source_leaves_search_results(api: Api, seed: Seed) -> None:
    user = await seed.user()
    notebook = await seed.notebook(user)
    bio = await api.add_text(user, notebook, PHOTOSYNTHESIS, "Biology")
    history = await api.add_text(user, notebook, REVOLUTION, "History")
    assert (await api.retrieve(user, "chlorophyll in chloroplasts"))[0]["sourceId"] == bio

    await seed.db.sources.update_one({"_id": bio}, {"$set": {"deleted_at": utcnow()}})
    await api.delete(bio, user)
    results = await api.retrieve(user, "chlorophyll in chloroplasts", k=10)
    assert results and {r["sourceId"] for r in results} == {history}
    assert await seed.db.chunks.count_documents({"source_id": bio}) == 0
    state = await seed.db.index_state.find_one({"_id": user})
    assert bio not in state["sources"] and history in state["sources"]
    # Deleting again is harmless.
    await api.delete(bio, user)


async def test_reingest_replaces_the_previous_version(api: Api, seed: Seed) -> None:
    user = await seed.user()
    notebook = await seed.notebook(user)
    source = await api.add_text(user, notebook, PHOTOSYNTHESIS, "Notes")
    await api.ingest_text(source, user, notebook, REVOLUTION)
    doc = await seed.wait_status(source)
    assert doc["status"] == "ready"
    ingests = {c["ingest_id"] async for c in seed.db.chunks.find({"source_id": source})}
    assert ingests == {doc["ingest_id"]}
    texts = " ".join([c["text"] async for c in seed.db.chunks.find({"source_id": source})])
    assert "Bastille" in texts and "chloroplasts" not in texts
    results = await api.retrieve(user, "photosynthesis chloroplasts", k=10)
    assert all("chloroplasts" not in r["text"] for r in results)


async def _expect_failure(api: Api, seed: Seed, data: bytes, content_type: str, reason: str, expect: int = 202) -> None:
    user = await seed.user()
    notebook = await seed.notebook(user)
    source = await seed.source(user, notebook, "Bad file")
    await api.ingest(source, user, notebook, data, content_type, expect=expect)
    doc = await seed.wait_status(source)
    assert doc["status"] == "failed", doc
    assert reason in doc["error"], doc["error"]
    assert doc["chunks"] == 0
    assert await seed.db.chunks.count_documents({"source_id": source}) == 0
    state = await seed.db.index_state.find_one({"_id": user})
    assert state is None or source not in state["sources"]
    assert await api.retrieve(user, "anything at all") == []


async def test_encrypted_pdf_fails_with_a_reason(api: Api, seed: Seed) -> None:
    await _expect_failure(api, seed, encrypted_pdf([PHOTOSYNTHESIS]), "application/pdf", "encrypted")


async def test_corrupt_pdf_fails_with_a_reason(api: Api, seed: Seed) -> None:
    await _expect_failure(api, seed, corrupt_pdf(), "application/pdf", "damaged or unreadable")


async def test_empty_file_fails_with_a_reason(api: Api, seed: Seed) -> None:
    await _expect_failure(api, seed, b"", "text/plain", "no text could be extracted")


async def test_pdf_without_text_fails_with_a_reason(api: Api, seed: Seed) -> None:
    await _expect_failure(api, seed, make_pdf([""]), "application/pdf", "no text could be extracted")


async def test_binary_garbage_fails_with_a_reason(api: Api, seed: Seed) -> None:
    garbage = bytes((i * 7919 + 13) % 256 for i in range(20000))
    await _expect_failure(api, seed, garbage, "text/plain", "not")


async def test_source_over_the_size_limit_fails(api: Api, seed: Seed) -> None:
    limit = api.client.app[SETTINGS].max_upload_bytes
    await _expect_failure(api, seed, b"word " * (limit // 5 + 10), "text/plain", "over the", expect=413)


async def test_a_failed_reingest_removes_the_earlier_version(api: Api, seed: Seed) -> None:
    user = await seed.user()
    notebook = await seed.notebook(user)
    source = await api.add_text(user, notebook, PHOTOSYNTHESIS)
    await api.ingest(source, user, notebook, corrupt_pdf(), "application/pdf")
    doc = await seed.wait_status(source)
    assert doc["status"] == "failed"
    assert await seed.db.chunks.count_documents({"source_id": source}) == 0
    assert await api.retrieve(user, "photosynthesis") == []


async def test_requests_need_the_service_token_and_the_owner(api: Api, seed: Seed) -> None:
    user = await seed.user()
    other = await seed.user()
    notebook = await seed.notebook(user)
    source = await seed.source(user, notebook)
    resp = await api.client.post("/internal/retrieve", json={"userId": user, "query": "x"})
    assert resp.status == 401 and (await resp.json())["error"]["code"] == "unauthorized"
    resp = await api.client.post(
        "/internal/retrieve", json={"userId": user, "query": "x"}, headers={"Authorization": "Bearer wrong"}
    )
    assert resp.status == 401
    # Another user's source id: not found, and the source is left untouched.
    await api.ingest(source, other, notebook, b"text", "text/plain", expect=404)
    assert (await seed.db.sources.find_one({"_id": source}))["status"] == "processing"
    await api.ingest(source, user, notebook, b"\x00\x01", "application/zip", expect=415)
    resp = await api.client.post(
        "/internal/retrieve", headers=api.headers, json={"userId": user, "query": "x", "unknown": 1}
    )
    assert resp.status == 400 and (await resp.json())["error"]["code"] == "invalid_request"
    resp = await api.client.post("/internal/retrieve", headers=api.headers, json={"userId": "../etc", "query": "x"})
    assert resp.status == 400
