"""The query shapes the repositories issue, each declared once next to the code that uses it.

A repository builds every filter it sends through a ``Query`` (``@query`` on the function that
builds the filter), and passes the query's ``sort`` with it. ``SHAPES`` therefore lists exactly
what the product asks the database, and ``tests/integration/db/test_query_plans.py`` explains
each shape against thousands of documents and fails on a collection scan: an index that the
planner cannot use, or a query without one, shows up there and not in production.

``example`` holds arguments for the builder (``variants`` more, where optional arguments change
the filter's fields); the plan does not depend on the values, only on the fields and operators.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, ParamSpec

Filter = dict[str, Any]
Sort = tuple[tuple[str, int], ...]

P = ParamSpec("P")


@dataclass(frozen=True)
class Query(Generic[P]):
    collection: str
    build: Callable[P, Filter]
    example: tuple[Any, ...]
    sort: Sort = ()
    limit: int = 0  # the largest limit the repository passes (0: none)
    full_scan: str = ""  # why this shape may read the whole collection (a rare, bounded job)
    variants: tuple[tuple[Any, ...], ...] = ()  # more arguments, for filters with optional parts

    @property
    def examples(self) -> tuple[tuple[Any, ...], ...]:
        return (self.example, *self.variants)

    @property
    def name(self) -> str:
        return f"{self.collection}.{self.build.__name__}"

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> Filter:
        return self.build(*args, **kwargs)

    @property
    def sort_list(self) -> list[tuple[str, int]] | None:
        """``sort`` in the form the driver's ``find(sort=...)`` takes (None: unsorted)."""
        return list(self.sort) or None


SHAPES: list[Query[Any]] = []


def query(
    collection: str, *, example: tuple[Any, ...], sort: Sort = (), limit: int = 0, full_scan: str = "",
    variants: tuple[tuple[Any, ...], ...] = (),
) -> Callable[[Callable[P, Filter]], Query[P]]:
    """Declare a filter builder as one of the product's query shapes."""

    def declare(build: Callable[P, Filter]) -> Query[P]:
        shape = Query(collection, build, example, sort, limit, full_scan, variants)
        SHAPES.append(shape)
        return shape

    return declare
