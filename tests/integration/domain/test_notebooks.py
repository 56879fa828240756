"""Notebooks: CRUD, plan limit, recycle bin and restore (sources are covered in test_sources)."""

from __future__ import annotations

import asyncio

import pytest

from collabry.devstack.components import free_port


async def test_crud(api, alice):
    h = alice["headers"]
    resp = await api.post("/api/notebooks/", json={"title": "Biology"}, headers=h)
    assert resp.status == 201
    nb = (await resp.json())["notebook"]
    assert set(nb) == {"id", "title", "createdAt", "updatedAt"} and nb["title"] == "Biology"
    assert (await (await api.get(f"/api/notebooks/{nb['id']}", headers=h)).json())["notebook"]["id"] == nb["id"]
    resp = await api.patch(f"/api/notebooks/{nb['id']}", json={"title": "Bio II"}, headers=h)
    assert (await resp.json())["notebook"]["title"] == "Bio II"
    assert [n["id"] for n in (await (await api.get("/api/notebooks", headers=h)).json())["notebooks"]] == [nb["id"]]
    assert (await (await api.get(f"/api/notebooks/{nb['id']}/sources", headers=h)).json()) == {"sources": []}
    assert (await api.delete(f"/api/notebooks/{nb['id']}", headers=h)).status == 204
    assert (await api.get(f"/api/notebooks/{nb['id']}", headers=h)).status == 404
    assert (await api.get(f"/api/notebooks/{nb['id']}/sources", headers=h)).status == 404
    trash = (await (await api.get("/api/notebooks/trash", headers=h)).json())["notebooks"]
    assert [n["id"] for n in trash] == [nb["id"]]
    resp = await api.post(f"/api/notebooks/{nb['id']}/restore", headers=h)
    assert resp.status == 200
    assert (await api.get(f"/api/notebooks/{nb['id']}", headers=h)).status == 200
    assert (await (await api.get("/api/notebooks/trash", headers=h)).json())["notebooks"] == []
    assert (await api.post(f"/api/notebooks/{nb['id']}/restore", headers=h)).status == 404


async def test_plan_limit_under_concurrency(api, alice):
    results = await asyncio.gather(*[
        api.post("/api/notebooks", json={"title": f"n{i}"}, headers=alice["headers"]) for i in range(10)
    ])
    assert sorted(r.status for r in results) == [201] * 3 + [403] * 7


async def test_wrong_content_type_for_a_source_is_415(api, alice):
    nb = (await (await api.post("/api/notebooks", json={"title": "x"}, headers=alice["headers"])).json())["notebook"]
    resp = await api.post(f"/api/notebooks/{nb['id']}/sources", data=b"hello",
                          headers={**alice["headers"], "Content-Type": "text/plain"})
    assert resp.status == 415


@pytest.fixture
def settings(settings):
    # No engine listens here: the hand-off fails and the upload must leave nothing behind.
    return settings.with_overrides(engine_url=f"http://127.0.0.1:{free_port()}")


async def test_an_engine_outage_undoes_the_upload(api, db, alice, settings):
    nb = (await (await api.post("/api/notebooks", json={"title": "x"}, headers=alice["headers"])).json())["notebook"]
    resp = await api.post(f"/api/notebooks/{nb['id']}/sources", json={"title": "t", "text": "Some notes."},
                          headers=alice["headers"])
    assert resp.status == 503 and (await resp.json())["error"]["code"] == "engine_unavailable"
    assert await db["sources"].count_documents({}) == 0
    uploads = settings.state_dir / "uploads"
    assert not uploads.exists() or list(uploads.iterdir()) == []
    used = (await (await api.get("/api/usage", headers=alice["headers"])).json())["used"]
    assert used["uploads"] == 0 and used["storageBytes"] == 0


async def test_malformed_multipart_is_400(api, db, alice):
    nb = (await (await api.post("/api/notebooks", json={"title": "x"}, headers=alice["headers"])).json())["notebook"]
    bodies = [
        b"--B\r\n\x0cKq\xf1\x82\x8e+--B--\r\n",  # a part whose header line is garbage
        b"--B\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\nonly a title\r\n--B--\r\n",
        b"--B\r\nContent-Disposition: form-data; name=\"other\"\r\n\r\nx\r\n--B--\r\n",
        b"no boundary at all",
    ]
    for body in bodies:
        resp = await api.post(f"/api/notebooks/{nb['id']}/sources", data=body,
                              headers={**alice["headers"], "Content-Type": "multipart/form-data; boundary=B"})
        assert resp.status == 400, (body, await resp.text())
    resp = await api.post(f"/api/notebooks/{nb['id']}/sources", data=b"x",
                          headers={**alice["headers"], "Content-Type": "multipart/form-data"})
    assert resp.status == 400
    assert await db["sources"].count_documents({}) == 0
