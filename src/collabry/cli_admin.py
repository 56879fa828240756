"""Sub-commands contributed by the engine, worker and operations modules.

Each entry is a function that adds its parser to the `collabry` sub-parsers; the command's code is
imported only when it runs.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

Register = Callable[[argparse._SubParsersAction], None]  # type: ignore[type-arg]

PARSERS: list[Register] = []


def _worker(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    from .worker.cli import register

    register(sub)


PARSERS.append(_worker)


def _domain(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    from .domain.cli import register

    register(sub)


PARSERS.append(_domain)


def _index(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    from .engine.index.cli import register

    register(sub)


PARSERS.append(_index)


def _backups(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    from .backups import register

    register(sub)


PARSERS.append(_backups)
