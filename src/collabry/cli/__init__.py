"""`collabry <command>`: the one entry point, for processes and operators alike.

Each module of this package registers one area's commands (``register(sub)``) and imports the code
a command runs only when it runs, so `collabry check-config` does not load FAISS and the gateway
does not load the embedding model. Everything here depends downward (settings, processes, domain,
jobs); nothing below imports the CLI.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from ..config import EX_CONFIG, ConfigError
from . import admin, backups, database, index, processes, worker

AREAS = (processes, database, backups, admin, worker, index)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="collabry", description="Collabry backend appliance")
    sub = parser.add_subparsers(dest="command", required=True)
    for area in AREAS:
        area.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except ConfigError as exc:
        print(f"collabry: configuration error: {exc}", file=sys.stderr)
        return EX_CONFIG
    except KeyboardInterrupt:
        return 130
