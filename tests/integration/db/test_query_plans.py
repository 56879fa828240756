"""Every query shape the repositories issue is answered through an index.

The repositories declare their filters with ``collabry.db.queries.query``; this test explains each
declared shape (filter, sort, limit) on collections holding thousands of documents across many
users, with exactly the indexes of ``collabry.db.indexes``, and fails on a collection scan of the
documents table. FerretDB 2 answers ``explain`` with PostgreSQL's plan (``queryPlanner.Plan``).
Updates and deletes cannot be explained there; their filters are declared as shapes too, so the
same check covers them as finds.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pymongo.database import Database

import collabry.db
from collabry.db.indexes import INDEXES
from collabry.db.queries import SHAPES, Query

ROWS = 3000
USERS = 300
BASE = datetime(2026, 1, 1, tzinfo=UTC)


def _load_repositories() -> list[Query[Any]]:
    for module in pkgutil.iter_modules(collabry.db.__path__):
        importlib.import_module(f"collabry.db.{module.name}")
    return list(SHAPES)


def _samples(filter_: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """(field path, a value of the type the filter compares it with) for every field of a filter."""
    if not isinstance(filter_, dict):
        return
    for key, value in filter_.items():
        if key in ("$or", "$and", "$nor"):
            for part in value:
                yield from _samples(part, path)
        elif key.startswith("$"):
            if key == "$in":
                yield path, value[0] if value else ""
            elif key in ("$exists", "$not"):
                yield path, ""
            else:
                yield path, value
        elif isinstance(value, dict) and any(k.startswith("$") for k in value):
            yield from _samples(value, key)
        else:
            yield key, value


def _value_like(sample: Any, field: str, i: int, *, unique: bool) -> Any:
    if field == "_id" or unique:
        return f"{field}-{i:06d}"
    if isinstance(sample, bool):
        return i % 2 == 0
    if isinstance(sample, int):
        return i % 1000
    if isinstance(sample, datetime):
        return BASE + timedelta(minutes=i)
    if sample is None:  # "not deleted" and similar: most are unset, some carry a date
        return None if i % 4 else BASE + timedelta(minutes=i)
    if isinstance(sample, list):
        return [f"{field}-{i % USERS}"]
    return f"{field}-{i % USERS}"


def _put(doc: dict[str, Any], path: str, value: Any) -> None:
    *parents, leaf = path.split(".")
    for part in parents:
        doc = doc.setdefault(part, {})
        if not isinstance(doc, dict):
            return
    doc[leaf] = value


def _documents(shapes: list[Query[Any]]) -> list[dict[str, Any]]:
    fields: dict[str, Any] = {}
    for shape in shapes:
        for example in shape.examples:
            fields.update(dict(_samples(shape(*example))))
        for name, _ in shape.sort:
            fields.setdefault(name, BASE)
    unique: set[str] = set()
    for index in INDEXES:
        if index.collection == shapes[0].collection:
            for name, _ in index.keys:
                fields.setdefault(name, "")
            if index.options.get("unique"):
                unique.update(name for name, _ in index.keys)
    docs = []
    for i in range(ROWS):
        doc: dict[str, Any] = {"_id": f"{i:06d}", "filler": "x" * 200}
        for name, sample in sorted(fields.items()):
            if name != "_id":
                _put(doc, name, _value_like(sample, name, i, unique=name in unique))
        docs.append(doc)
    return docs


def _nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", []):
        yield from _nodes(child)


def _collection_scans(plan: dict[str, Any]) -> list[dict[str, Any]]:
    """Nodes that read every document of the collection.

    Besides a Seq Scan, DocumentDB may walk the whole ``_id_`` index with only the collection's
    shard key as condition (``Index Cond: (shard_key_value = ...)``): an index node, but still a
    read of the whole collection. A useful index condition compares the document or its id.
    """
    found = []
    for node in _nodes(plan):
        kind = node.get("Node Type", "")
        if kind == "Seq Scan" and str(node.get("Relation Name", "")).startswith("documents"):
            found.append(node)
        elif "Index Name" in node:
            condition = str(node.get("Index Cond", ""))
            if "document" not in condition and "object_id" not in condition:
                found.append(node)
    return found


SHAPES_NOW = _load_repositories()


@pytest.fixture(scope="module")
def filled(infra: Any) -> Iterator[Database[dict[str, Any]]]:
    from pymongo import MongoClient

    client: MongoClient[dict[str, Any]] = MongoClient(infra.mongo_uri, tz_aware=True)
    db = client["plans_" + datetime.now(UTC).strftime("%H%M%S%f")]
    # Indexes first: DocumentDB builds an index on a non-empty collection in the background.
    for index in INDEXES:
        db[index.collection].create_index(index.keys, **index.options)
    by_collection: dict[str, list[Query[Any]]] = {}
    for shape in SHAPES_NOW:
        by_collection.setdefault(shape.collection, []).append(shape)
    for shapes in by_collection.values():
        db[shapes[0].collection].insert_many(_documents(shapes), ordered=False)
    yield db
    client.drop_database(db.name)
    client.close()


def test_the_repositories_declare_their_query_shapes() -> None:
    collections = {shape.collection for shape in SHAPES_NOW}
    assert {"users", "usage", "plan_counts", "storage_usage", "coupons", "auth_sessions"} <= collections
    names = [shape.name for shape in SHAPES_NOW]
    assert len(names) == len(set(names)), "two shapes with one name"


CASES = [(shape, example) for shape in SHAPES_NOW for example in shape.examples]
CASE_NAMES = [f"{shape.name}{i or ''}" for shape in SHAPES_NOW for i in range(len(shape.examples))]


@pytest.mark.parametrize(("shape", "example"), CASES, ids=CASE_NAMES)
def test_query_shape_uses_an_index(
    filled: Database[dict[str, Any]], shape: Query[Any], example: tuple[Any, ...]
) -> None:
    command: dict[str, Any] = {"find": shape.collection, "filter": shape(*example)}
    if shape.sort:
        command["sort"] = dict(shape.sort)
    if shape.limit:
        command["limit"] = shape.limit
    explained = filled.command("explain", command, verbosity="queryPlanner")
    plan = explained["queryPlanner"]["Plan"]
    if shape.full_scan:
        return  # declared as reading the whole collection, with the reason next to it
    assert not _collection_scans(plan), f"{shape.name} scans the collection: {plan}"
    assert any("Index Name" in node for node in _nodes(plan)), plan
