"""The database: `collabry migrate`, `collabry backup DIR` / `restore DIR` (a logical dump) and
`collabry import-database` (from another MongoDB-wire database)."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from .bootstrap import settings_for
from .types import Subparsers


def cmd_migrate(args: argparse.Namespace) -> int:
    settings = settings_for("migrate")
    from ..db.client import create_client
    from ..db.migrations import migrate

    async def main() -> int:
        client = create_client(settings)
        try:
            count = await migrate(client[settings.database_name])
        finally:
            await client.close()
        print(f"{count} indexes in place")
        return 0

    return asyncio.run(main())


def cmd_backup(args: argparse.Namespace) -> int:
    settings = settings_for("admin")
    from ..backup import backup

    return asyncio.run(backup(settings, Path(args.directory)))


def cmd_restore(args: argparse.Namespace) -> int:
    settings = settings_for("admin")
    from ..backup import restore

    return asyncio.run(restore(settings, Path(args.directory), drop=args.drop))


def cmd_import_database(args: argparse.Namespace) -> int:
    settings = settings_for("admin")
    from ..backup import import_database

    # A URI with a password belongs in a file (--from-uri-file), not on a command line.
    uri = Path(args.from_uri_file).read_text().strip() if args.from_uri_file else args.from_uri
    return asyncio.run(import_database(settings, uri, args.from_database))


def register(sub: Subparsers) -> None:
    p = sub.add_parser("migrate", help="create database indexes (idempotent)")
    p.set_defaults(func=cmd_migrate)

    p = sub.add_parser(
        "import-database",
        help="copy every collection of another MongoDB-wire database (FerretDB 1.x, MongoDB) into this one",
    )
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--from-uri", help="mongodb://host:port/ of the source (no password here)")
    source.add_argument("--from-uri-file", help="a file holding the source URI")
    p.add_argument("--from-database", help="the source database name (default: this one's name)")
    p.set_defaults(func=cmd_import_database)

    p = sub.add_parser("backup", help="dump the database (every collection) and the uploads into DIR")
    p.add_argument("directory")
    p.set_defaults(func=cmd_backup)
    p = sub.add_parser("restore", help="load a backup made by `collabry backup`")
    p.add_argument("directory")
    p.add_argument("--drop", action="store_true", help="replace collections that exist")
    p.set_defaults(func=cmd_restore)
