"""Operator commands: `collabry user create`, `collabry coupon create|list` and `collabry payment
confirm`, administration only the CLI offers.

They act as ``policy.SYSTEM`` (admin role): whoever can run them holds the host's credentials.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from datetime import UTC, datetime
from typing import Any

from ..db.client import iso
from .bootstrap import settings_for
from .types import Subparsers


def _when(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {text!r}") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def register(sub: Subparsers) -> None:
    p = sub.add_parser("user", help="user administration")
    usub = p.add_subparsers(dest="user_command", required=True)
    c = usub.add_parser("create", help="create a user; the password is read from stdin")
    c.add_argument("--email", required=True)
    c.add_argument("--name", required=True)
    c.add_argument("--admin", action="store_true")
    c.set_defaults(func=cmd_user_create)

    p = sub.add_parser("coupon", help="coupons (admin)")
    csub = p.add_subparsers(dest="coupon_command", required=True)
    c = csub.add_parser("create", help="create a coupon")
    c.add_argument("--code", required=True, help="3-32 letters, digits, - or _ (stored upper-case)")
    c.add_argument("--percent", type=int, required=True, help="discount, 1-100")
    c.add_argument("--valid-from", type=_when, help="ISO 8601 start (default: now)")
    c.add_argument("--valid-until", type=_when, help="ISO 8601 end (default: no end)")
    c.add_argument("--max-redemptions", type=int, help="how many users may redeem it (default: no cap)")
    c.add_argument("--plan", action="append", dest="plans", help="a plan it applies to (repeat; default: all)")
    c.set_defaults(func=cmd_coupon_create)
    ls = csub.add_parser("list", help="list coupons with their redemption counts")
    ls.set_defaults(func=cmd_coupon_list)

    p = sub.add_parser("payment", help="payments (admin)")
    psub = p.add_subparsers(dest="payment_command", required=True)
    c = psub.add_parser("confirm", help="confirm a manual-provider checkout as paid (same path as the webhook)")
    c.add_argument("checkout_id")
    c.set_defaults(func=cmd_payment_confirm)


def _run(coro_fn: Any) -> int:
    """Run ``coro_fn(settings, db)`` on a migrated database; an ``AppError`` is one line and exit 1."""
    settings = settings_for("admin")

    async def main() -> int:
        from ..db.client import create_client
        from ..db.migrations import migrate
        from ..errors import AppError

        client = create_client(settings)
        try:
            db = client[settings.database_name]
            await migrate(db)
            return int(await coro_fn(settings, db))
        except AppError as exc:
            print(f"collabry: {exc.message}", file=sys.stderr)
            return 1
        finally:
            await client.close()

    return asyncio.run(main())


def cmd_user_create(args: argparse.Namespace) -> int:
    password = sys.stdin.readline().rstrip("\n") if not sys.stdin.isatty() else _prompt_password()

    async def create(settings: Any, db: Any) -> int:
        from ..auth.passwords import Passwords, password_weakness
        from ..db.users import EmailTaken, UserRepository

        weakness = password_weakness(password)
        if weakness:
            print(f"collabry: {weakness}", file=sys.stderr)
            return 2
        password_hash = await Passwords(settings).hash(password)
        role = "admin" if args.admin else "user"
        try:
            user = await UserRepository(db).create(
                email=args.email, name=args.name, password_hash=password_hash, role=role
            )
        except EmailTaken:
            print(f"collabry: {args.email} is taken", file=sys.stderr)
            return 1
        print(user["_id"])
        return 0

    return _run(create)


def _prompt_password() -> str:
    import getpass

    return getpass.getpass("Password: ")


def cmd_coupon_create(args: argparse.Namespace) -> int:
    from ..domain import coupons
    from ..domain.policy import SYSTEM

    async def create(settings: Any, db: Any) -> int:
        doc = await coupons.create(db, settings, SYSTEM, args.code, args.percent, valid_from=args.valid_from,
                                   valid_until=args.valid_until, max_redemptions=args.max_redemptions,
                                   plans=args.plans)
        print(json.dumps(coupons.public(doc)))
        return 0

    return _run(create)


def cmd_coupon_list(args: argparse.Namespace) -> int:
    from ..domain import coupons

    async def show(settings: Any, db: Any) -> int:
        for doc in await coupons.list_all(db):
            print(json.dumps({**coupons.public(doc), "redemptions": coupons.redemptions(doc),
                              "createdAt": iso(doc.get("created_at"))}))
        return 0

    return _run(show)


def cmd_payment_confirm(args: argparse.Namespace) -> int:
    from ..domain import billing

    async def confirm(settings: Any, db: Any) -> int:
        from ..cache import users as user_cache
        from ..cache.client import create_redis
        from ..db.billing import Checkouts
        from ..realtime.emitter import Emitter

        emitter = Emitter(settings)
        redis = create_redis(settings)
        try:
            event = {"eventId": f"manual:{args.checkout_id}", "type": "payment.succeeded",
                     "checkoutId": args.checkout_id}
            with user_cache.registered(user_cache.UserCache(redis, settings)):  # /me shows the new plan
                status = await billing.process_event(db, settings, emitter, event)
        finally:
            await emitter.close()
            await redis.aclose()
        checkout = await Checkouts(db).get(args.checkout_id)
        print(json.dumps({"status": status, "checkout": checkout["status"] if checkout else "unknown"}))
        return 0 if checkout and checkout["status"] == "paid" else 1

    return _run(confirm)
