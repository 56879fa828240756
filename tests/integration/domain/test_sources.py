"""Sources through the real gateway and a real `collabry engine` process: type by content, size and
quota limits before anything is stored, generated file names, status polling, deletion."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.support.documents import make_pdf
from tests.support.eventually import eventually

from .conftest import MAX_UPLOAD

ELF = b"\x7fELF\x02\x01\x01\x00" + b"\x00" * 56 + b"machine code" * 20
NOTES = "Mitochondria are the powerhouse of the cell. They make ATP by oxidative phosphorylation."


@pytest.fixture
def settings(settings, engine):
    return settings.with_overrides(engine_url=engine.url)


@pytest.fixture
def uploads(settings) -> Path:
    return settings.state_dir / "uploads"


@pytest.fixture
async def notebook(api, alice) -> str:
    resp = await api.post("/api/notebooks", json={"title": "Bio"}, headers=alice["headers"])
    return (await resp.json())["notebook"]["id"]


def form(data: bytes, filename: str, content_type: str = "application/octet-stream", title: str | None = None,
         quote: bool = False):
    body = aiohttp.FormData(quote_fields=quote)  # unquoted: the name goes on the wire as written
    if title is not None:
        body.add_field("title", title)
    body.add_field("file", data, filename=filename, content_type=content_type)
    return body


async def upload(api, user, notebook, data: bytes, filename: str, **kw) -> Any:
    return await api.post(f"/api/notebooks/{notebook}/sources", data=form(data, filename, **kw),
                          headers=user["headers"])


async def wait_ready(api, user, notebook, source_id, timeout=60.0) -> dict[str, Any]:
    async def processed() -> dict[str, Any] | None:
        resp = await api.get(f"/api/notebooks/{notebook}/sources/{source_id}", headers=user["headers"])
        source: dict[str, Any] = (await resp.json())["source"]
        return source if source["status"] != "processing" else None

    return await eventually(processed, timeout, f"source {source_id} to leave processing", interval=0.1)


async def usage_of(api, user) -> dict[str, Any]:
    return (await (await api.get("/api/usage", headers=user["headers"])).json())["used"]


async def nothing_stored(api, db, user, uploads: Path) -> None:
    assert await db["sources"].count_documents({"user_id": user["id"]}) == 0
    assert not uploads.exists() or [p.name for p in uploads.iterdir()] == []
    used = await usage_of(api, user)
    assert used["uploads"] == 0 and used["storageBytes"] == 0


async def test_text_source_is_ingested_and_listed(api, alice, notebook):
    resp = await api.post(f"/api/notebooks/{notebook}/sources", json={"title": "Cells", "text": NOTES},
                          headers=alice["headers"])
    assert resp.status == 202
    source = (await resp.json())["source"]
    assert source["status"] == "processing" and source["title"] == "Cells" and source["kind"] == "text"
    ready = await wait_ready(api, alice, notebook, source["id"])
    assert ready["status"] == "ready" and ready["chunks"] >= 1 and "error" not in ready
    listed = (await (await api.get(f"/api/notebooks/{notebook}/sources", headers=alice["headers"])).json())["sources"]
    assert [(s["id"], s["status"]) for s in listed] == [(source["id"], "ready")]


async def test_pdf_named_txt_is_a_pdf(api, db, alice, notebook, uploads):
    pdf = make_pdf(["Photosynthesis makes glucose from light. Chlorophyll absorbs red and blue light."])
    resp = await upload(api, alice, notebook, pdf, "notes.txt", content_type="text/plain")
    assert resp.status == 202, await resp.text()
    source = (await resp.json())["source"]
    assert source["kind"] == "pdf" and source["title"] == "notes.txt"
    doc = await db["sources"].find_one({"_id": source["id"]})
    assert doc["sha256"] == hashlib.sha256(pdf).hexdigest() and doc["size"] == len(pdf)
    assert doc["file"] == f"{source['id']}.pdf"
    assert (uploads / doc["file"]).read_bytes() == pdf
    ready = await wait_ready(api, alice, notebook, source["id"])
    assert ready["status"] == "ready" and ready["chunks"] >= 1


async def test_markdown_by_content(api, alice, notebook):
    text = b"# Revision\n\n- item one\n- item two\n\nSee [the notes](https://example.com)."
    resp = await upload(api, alice, notebook, text, "revision.pdf", content_type="application/pdf")
    assert resp.status == 202 and (await resp.json())["source"]["kind"] == "markdown"


BINARIES = [
    (ELF, "homework.pdf"),
    (b"MZ\x90\x00\x03" + b"\x00" * 100, "essay.txt"),
    (b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, "diagram.md"),
    (b"\xff\xfe" + "text in UTF-16".encode("utf-16-le"), "notes.txt"),
]


async def test_executables_and_other_binaries_are_415_and_not_stored(api, db, alice, notebook, uploads):
    for data, name in BINARIES:
        resp = await upload(api, alice, notebook, data, name, content_type="application/pdf")
        assert resp.status == 415, (name, await resp.text())
        assert (await resp.json())["error"]["code"] == "unsupported_media_type"
    await nothing_stored(api, db, alice, uploads)


async def test_empty_file_is_400(api, db, alice, notebook, uploads):
    resp = await upload(api, alice, notebook, b"  \n", "empty.txt")
    assert resp.status == 400 and (await resp.json())["error"]["code"] == "empty_file"
    await nothing_stored(api, db, alice, uploads)


async def test_oversize_body_is_413_without_being_stored(api, db, alice, notebook, uploads):
    big = b"a" * (MAX_UPLOAD + 1)
    resp = await upload(api, alice, notebook, big, "big.txt")
    assert resp.status == 413 and (await resp.json())["error"]["code"] == "too_large"

    async def chunks():  # no Content-Length: the limit is enforced while reading
        yield b"--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.txt\"\r\n\r\n"
        for _ in range(MAX_UPLOAD // 4096 + 2):
            yield b"b" * 4096
        yield b"\r\n--b--\r\n"

    resp = await api.post(f"/api/notebooks/{notebook}/sources", data=chunks(),
                          headers={**alice["headers"], "Content-Type": "multipart/form-data; boundary=b"})
    assert resp.status == 413
    # a JSON text source over the JSON limit is refused the same way
    resp = await api.post(f"/api/notebooks/{notebook}/sources", json={"title": "t", "text": "x" * (2 * 2**20)},
                          headers=alice["headers"])
    assert resp.status == 413
    await nothing_stored(api, db, alice, uploads)


PATH_NAMES = ["../../../../tmp/evil.txt", "..\\..\\windows\\evil.txt", "/etc/evil.txt", "....//....//evil.txt"]


async def test_path_like_names_are_only_titles(api, db, alice, notebook, uploads, settings):
    # sent as written, and percent-encoded as some clients do
    await db["users"].update_one({"_id": alice["id"]}, {"$set": {"plan": "pro"}})  # room for 8 uploads today
    stored: list[str] = []
    for name, quote in [(n, q) for n in PATH_NAMES for q in (False, True)]:
        resp = await upload(api, alice, notebook, NOTES.encode(), name, content_type="text/plain", quote=quote)
        assert resp.status == 202, await resp.text()
        source = (await resp.json())["source"]
        assert source["title"] == "evil.txt", (name, quote, source["title"])
        stored.append(f"{source['id']}.txt")
    assert sorted(p.name for p in uploads.iterdir()) == sorted(stored)
    everything = {p.relative_to(settings.state_dir).as_posix() for p in settings.state_dir.rglob("*") if p.is_file()}
    assert {f for f in everything if "evil" in f} == set()


async def test_daily_upload_quota(api, db, alice, notebook):
    # free plan here: 4 uploads a day; a refused file (415) does not count
    assert (await upload(api, alice, notebook, ELF, "x.pdf")).status == 415
    for i in range(4):
        resp = await api.post(f"/api/notebooks/{notebook}/sources", json={"title": f"t{i}", "text": NOTES},
                              headers=alice["headers"])
        assert resp.status == 202
    resp = await api.post(f"/api/notebooks/{notebook}/sources", json={"title": "t5", "text": NOTES},
                          headers=alice["headers"])
    assert resp.status == 429 and (await resp.json())["error"]["code"] == "quota_exceeded"
    assert await db["sources"].count_documents({"user_id": alice["id"]}) == 4
    assert (await usage_of(api, alice))["uploads"] == 4


async def test_storage_quota_and_deletion_frees_everything(api, db, alice, notebook, uploads):
    # free plan here: 64 KiB (65,536 bytes) of storage, 32 KiB per file, 4 uploads a day
    small = (NOTES + " ").encode() * 12
    big = b"Enzymes lower activation energy. " * 1000
    first = (await (await upload(api, alice, notebook, small[:1000], "a.txt")).json())["source"]
    await wait_ready(api, alice, notebook, first["id"])
    for name in ("b.txt", "c.txt"):
        assert (await upload(api, alice, notebook, big[:32_000], name)).status == 202
    resp = await upload(api, alice, notebook, small[:1000], "d.txt")
    assert resp.status == 403 and (await resp.json())["error"]["code"] == "storage_limit"
    assert (await usage_of(api, alice)) == {"ai": 0, "uploads": 3, "storageBytes": 65_000, "boards": 0,
                                            "notebooks": 1}
    assert await db["chunks"].count_documents({"source_id": first["id"]}) >= 1
    resp = await api.delete(f"/api/notebooks/{notebook}/sources/{first['id']}", headers=alice["headers"])
    assert resp.status == 204
    assert await db["chunks"].count_documents({"source_id": first["id"]}) == 0
    assert await db["sources"].find_one({"_id": first["id"]}) is None
    assert f"{first['id']}.txt" not in {p.name for p in uploads.iterdir()}
    assert (await usage_of(api, alice))["storageBytes"] == 64_000
    assert (await api.get(f"/api/notebooks/{notebook}/sources/{first['id']}", headers=alice["headers"])).status == 404
    # the freed space is usable again
    assert (await upload(api, alice, notebook, small[:1000], "d.txt")).status == 202


async def test_notebook_recycle_bin_unindexes_and_restore_reindexes(api, db, alice, notebook, uploads):
    resp = await api.post(f"/api/notebooks/{notebook}/sources", json={"title": "Cells", "text": NOTES},
                          headers=alice["headers"])
    source_id = (await resp.json())["source"]["id"]
    await wait_ready(api, alice, notebook, source_id)
    assert (await api.delete(f"/api/notebooks/{notebook}", headers=alice["headers"])).status == 204
    # out of the index at once, the file kept for the recycle window
    assert await db["chunks"].count_documents({"source_id": source_id}) == 0
    assert [p.name for p in uploads.iterdir()] == [f"{source_id}.txt"]
    resp = await api.post(f"/api/notebooks/{notebook}/restore", headers=alice["headers"])
    assert resp.status == 200
    ready = await wait_ready(api, alice, notebook, source_id)
    assert ready["status"] == "ready" and ready["chunks"] >= 1
    assert await db["chunks"].count_documents({"source_id": source_id}) >= 1
