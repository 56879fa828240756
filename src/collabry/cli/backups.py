"""`collabry backups run|list|restore`: scheduled backups in a restic repository (``collabry.backups``)."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from .bootstrap import settings_for
from .types import Subparsers


def cmd_backups(args: argparse.Namespace) -> int:
    from ..backups import list_snapshots, load_backup_config, restore_snapshot, run_backup

    settings = settings_for("backup")
    config = load_backup_config(settings)
    if args.backups_command == "run":
        return asyncio.run(run_backup(settings, config, metrics_file=args.metrics_file))
    if args.backups_command == "list":
        return list_snapshots(config)
    return asyncio.run(restore_snapshot(settings, config, args.snapshot, drop=args.drop))


def register(sub: Subparsers) -> None:
    p = sub.add_parser("backups", help="scheduled backups in a restic repository (run, list, restore)")
    bsub = p.add_subparsers(dest="backups_command", required=True)
    r = bsub.add_parser("run", help="back up the database, uploads, Redis and FAISS snapshots; apply retention")
    r.add_argument("--metrics-file", type=Path, help="write the outcome here (node_exporter textfile, *.prom)")
    r.set_defaults(func=cmd_backups)
    bsub.add_parser("list", help="list the snapshots in the repository").set_defaults(func=cmd_backups)
    r = bsub.add_parser("restore", help="restore a snapshot (default: the latest)")
    r.add_argument("snapshot", nargs="?", default="latest", help="a snapshot id (or its prefix) or 'latest'")
    r.add_argument("--drop", action="store_true", help="replace collections, Redis keys and snapshots that exist")
    r.set_defaults(func=cmd_backups)
