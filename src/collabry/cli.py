"""`collabry <command>`: one entry point that dispatches to a process or an admin task.

Each command imports only what it needs, so `collabry check-config` does not load FAISS and the
gateway does not load the embedding model.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Callable, Sequence

from .config import EX_CONFIG, ConfigError, Settings, load_settings

Command = Callable[[argparse.Namespace], int]
COMMANDS: dict[str, Command] = {}


def _limit_threads(settings: Settings) -> None:
    # Multi-threaded BLAS on a few shared cores is much slower than one thread; set before numpy loads.
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, str(settings.threads))


def _settings(*, process: str, require: tuple[str, ...] = ()) -> Settings:
    from .logging import configure_logging

    settings = load_settings(require=require)
    _limit_threads(settings)
    configure_logging(settings, process=process)
    return settings


def cmd_gateway(args: argparse.Namespace) -> int:
    settings = _settings(process="gateway", require=("jwt-secret",))
    from .gateway.app import create_app
    from .lifecycle import run

    return run(lambda: create_app(settings), args.host, args.port, settings.drain_timeout)


def cmd_engine(args: argparse.Namespace) -> int:
    settings = _settings(process="engine", require=("service-token",))
    from .engine.app import create_app
    from .lifecycle import run

    return run(lambda: create_app(settings), args.host, args.port, settings.drain_timeout)


def cmd_llm(args: argparse.Namespace) -> int:
    settings = _settings(process="llm")
    from .engine.llm.local import exec_local_server

    return exec_local_server(settings, host=args.host, port=args.port)


def cmd_migrate(args: argparse.Namespace) -> int:
    settings = _settings(process="migrate")
    from .db.client import create_client
    from .db.migrations import migrate

    async def main() -> int:
        client = create_client(settings)
        try:
            count = await migrate(client[settings.database_name])
        finally:
            await client.close()
        print(f"{count} indexes in place")
        return 0

    return asyncio.run(main())


def cmd_check_config(args: argparse.Namespace) -> int:
    from .config import describe

    settings = load_settings(require=tuple(args.require or ()))
    for key, value in describe(settings).items():
        print(f"{key} = {value}")
    return 0


def cmd_user_create(args: argparse.Namespace) -> int:
    settings = _settings(process="admin")
    from .admin import create_user

    password = sys.stdin.readline().rstrip("\n") if not sys.stdin.isatty() else _prompt_password()
    return asyncio.run(create_user(settings, email=args.email, name=args.name, password=password, admin=args.admin))


def _prompt_password() -> str:
    import getpass

    return getpass.getpass("Password: ")


def cmd_backup(args: argparse.Namespace) -> int:
    settings = _settings(process="admin")
    from pathlib import Path

    from .backup import backup

    return asyncio.run(backup(settings, Path(args.directory)))


def cmd_restore(args: argparse.Namespace) -> int:
    settings = _settings(process="admin")
    from pathlib import Path

    from .backup import restore

    return asyncio.run(restore(settings, Path(args.directory), drop=args.drop))


def cmd_import_database(args: argparse.Namespace) -> int:
    settings = _settings(process="admin")
    from pathlib import Path

    from .backup import import_database

    # A URI with a password belongs in a file (--from-uri-file), not on a command line.
    uri = Path(args.from_uri_file).read_text().strip() if args.from_uri_file else args.from_uri
    return asyncio.run(import_database(settings, uri, args.from_database))


def cmd_dev_up(args: argparse.Namespace) -> int:
    from .devstack.up import main as up

    return up(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="collabry", description="Collabry backend appliance")
    sub = parser.add_subparsers(dest="command", required=True)

    for name, fn, port in (("gateway", cmd_gateway, 8001), ("engine", cmd_engine, 8100), ("llm", cmd_llm, 8200)):
        p = sub.add_parser(name, help=f"run the {name} process")
        p.add_argument("--host", default="127.0.0.1")
        p.add_argument("--port", type=int, default=port)
        p.set_defaults(func=fn)

    p = sub.add_parser("migrate", help="create database indexes (idempotent)")
    p.set_defaults(func=cmd_migrate)

    p = sub.add_parser("check-config", help="validate the configuration and print it (secrets hidden)")
    p.add_argument("--require", action="append", help="a secret that must be present")
    p.set_defaults(func=cmd_check_config)

    p = sub.add_parser("user", help="user administration")
    usub = p.add_subparsers(dest="user_command", required=True)
    c = usub.add_parser("create", help="create a user; the password is read from stdin")
    c.add_argument("--email", required=True)
    c.add_argument("--name", required=True)
    c.add_argument("--admin", action="store_true")
    c.set_defaults(func=cmd_user_create)

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

    p = sub.add_parser("dev", help="development stack")
    dsub = p.add_subparsers(dest="dev_command", required=True)
    d = dsub.add_parser(
        "up", help="run Redis, the database (PostgreSQL + DocumentDB, FerretDB), nginx and the services"
    )
    d.add_argument("--replicas", type=int, default=2)
    d.add_argument("--engines", type=int, default=2, help="engine processes (users are spread over them)")
    d.add_argument("--no-llm", action="store_true", help="do not start the local model server")
    d.set_defaults(func=cmd_dev_up)

    for register in _EXTRA_PARSERS:
        register(sub)
    return parser


# Other modules add their commands here (worker, index, backup, coupon) without touching main().
_EXTRA_PARSERS: list[Callable[[argparse._SubParsersAction], None]] = []  # type: ignore[type-arg]


def _load_extra_parsers() -> None:
    from . import cli_admin

    _EXTRA_PARSERS.extend(cli_admin.PARSERS)


def main(argv: Sequence[str] | None = None) -> int:
    _load_extra_parsers()
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except ConfigError as exc:
        print(f"collabry: configuration error: {exc}", file=sys.stderr)
        return EX_CONFIG
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
