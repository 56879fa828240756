"""Administrative tasks behind the CLI."""

from __future__ import annotations

import sys

from .auth.passwords import Passwords, password_weakness
from .config import Settings
from .db.client import create_client
from .db.migrations import migrate
from .db.users import EmailTaken, UserRepository


async def create_user(settings: Settings, *, email: str, name: str, password: str, admin: bool) -> int:
    weakness = password_weakness(password)
    if weakness:
        print(f"collabry: {weakness}", file=sys.stderr)
        return 2
    client = create_client(settings)
    try:
        db = client[settings.database_name]
        await migrate(db)
        password_hash = await Passwords(settings).hash(password)
        try:
            user = await UserRepository(db).create(
                email=email, name=name, password_hash=password_hash, role="admin" if admin else "user"
            )
        except EmailTaken:
            print(f"collabry: {email} is taken", file=sys.stderr)
            return 1
        print(user["_id"])
        return 0
    finally:
        await client.close()
