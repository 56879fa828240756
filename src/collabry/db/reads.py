"""Reading lists and counts in one round trip.

FerretDB 2.5 serves a ``find`` that may need a second batch (a sorted one always does) and every
aggregation (``count_documents`` is one) through a persistent cursor, whose end costs a new
PostgreSQL connection: 10-15 ms per list on the reference machine, against 0.6-2.7 ms for the same
read as one batch (a negative limit) or the ``count`` command (tests/bench, docs/benchmarks.md).
Every list the product shows is bounded (plans limit notebooks, sources and boards; chats and
notifications have list limits), so it fits one batch (16 MiB).
"""

from __future__ import annotations

from typing import Any

from pymongo.asynchronous.collection import AsyncCollection

from .queries import Filter

ONE_BATCH = 10_000  # the most documents a list read returns (bounded lists are far smaller)


async def all_of(
    coll: AsyncCollection[dict[str, Any]],
    where: Filter,
    *,
    sort: list[tuple[str, int]] | None = None,
    projection: dict[str, Any] | None = None,
    at_most: int = ONE_BATCH,
) -> list[dict[str, Any]]:
    """The matching documents, at most ``at_most``, in one batch (the cursor closes with it)."""
    if at_most <= 0:
        return []  # a limit of 0 would mean no limit at all
    return await coll.find(where, projection, sort=sort, limit=-at_most).to_list(None)


async def count(coll: AsyncCollection[dict[str, Any]], where: Filter) -> int:
    """The number of matching documents, by the ``count`` command (no cursor)."""
    reply = await coll.database.command("count", coll.name, query=where)
    return int(reply["n"])
