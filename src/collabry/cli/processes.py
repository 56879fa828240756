"""The long-running processes (`collabry gateway|engine|llm`), the development stack
(`collabry dev up`) and `collabry check-config`."""

from __future__ import annotations

import argparse

from .bootstrap import settings_for
from .types import Subparsers


def cmd_gateway(args: argparse.Namespace) -> int:
    settings = settings_for("gateway", require=("jwt-secret",))
    from ..gateway.app import create_app
    from ..lifecycle import run

    return run(lambda: create_app(settings), args.host, args.port, settings.drain_timeout)


def cmd_engine(args: argparse.Namespace) -> int:
    settings = settings_for("engine", require=("service-token",))
    from ..engine.app import create_app
    from ..lifecycle import run

    return run(lambda: create_app(settings), args.host, args.port, settings.drain_timeout)


def cmd_llm(args: argparse.Namespace) -> int:
    settings = settings_for("llm")
    from ..engine.llm.local import exec_local_server

    return exec_local_server(settings, host=args.host, port=args.port)


def cmd_check_config(args: argparse.Namespace) -> int:
    from ..config import describe, load_settings

    settings = load_settings(require=tuple(args.require or ()))
    for key, value in describe(settings).items():
        print(f"{key} = {value}")
    return 0


def cmd_dev_up(args: argparse.Namespace) -> int:
    from ..devstack.up import main as up

    return up(args)


def register(sub: Subparsers) -> None:
    for name, fn, port in (("gateway", cmd_gateway, 8001), ("engine", cmd_engine, 8100), ("llm", cmd_llm, 8200)):
        p = sub.add_parser(name, help=f"run the {name} process")
        p.add_argument("--host", default="127.0.0.1")
        p.add_argument("--port", type=int, default=port)
        p.set_defaults(func=fn)

    p = sub.add_parser("check-config", help="validate the configuration and print it (secrets hidden)")
    p.add_argument("--require", action="append", help="a secret that must be present")
    p.set_defaults(func=cmd_check_config)

    p = sub.add_parser("dev", help="development stack")
    dsub = p.add_subparsers(dest="dev_command", required=True)
    d = dsub.add_parser(
        "up", help="run Redis, the database (PostgreSQL + DocumentDB, FerretDB), nginx and the services"
    )
    d.add_argument("--replicas", type=int, default=2)
    d.add_argument("--engines", type=int, default=2, help="engine processes (users are spread over them)")
    d.add_argument("--no-llm", action="store_true", help="do not start the local model server")
    d.set_defaults(func=cmd_dev_up)
