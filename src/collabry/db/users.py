"""Users: email is unique and stored lower-cased; passwords only as argon2id hashes.

``{_id, email, name, password_hash, plan, role, created_at, email_unverified, email_check:
{hash, expires_at}, email_verified_at}``: where the operator requires confirmed emails, a new
account has ``email_unverified: true`` and cannot sign in until the emailed link (only its SHA-256
is in ``email_check``) removes it. Accounts without the field are confirmed."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from ..cache.users import user_changed
from .client import Database, iso, new_id, utcnow
from .queries import Filter, query

COLLECTION = "users"


class EmailTaken(Exception):
    pass


def normalise_email(email: str) -> str:
    return email.strip().lower()


def public_user(doc: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": doc["_id"],
        "email": doc["email"],
        "name": doc["name"],
        "plan": doc.get("plan", "free"),
        "createdAt": iso(doc.get("created_at")),
        "emailVerified": not doc.get("email_unverified", False),
    }


@query(COLLECTION, example=("u1",))
def by_id(user_id: str) -> Filter:
    return {"_id": user_id}


@query(COLLECTION, example=(["u1", "u2"],))
def by_ids(user_ids: list[str]) -> Filter:
    return {"_id": {"$in": user_ids}}


@query(COLLECTION, example=("a@example.com",))
def by_email(email: str) -> Filter:
    return {"email": normalise_email(email)}


@query(COLLECTION, example=("0" * 64, datetime(2026, 1, 1)))
def email_check(token_hash: str, now: datetime) -> Filter:
    return {"email_check.hash": token_hash, "email_check.expires_at": {"$gt": now}}


@query(COLLECTION, example=("u1",))
def unverified(user_id: str) -> Filter:
    return {"_id": user_id, "email_unverified": True}


class UserRepository:
    def __init__(self, db: Database) -> None:
        self.users = db[COLLECTION]

    async def create(
        self, *, email: str, name: str, password_hash: str, role: str = "user", unverified: bool = False
    ) -> dict[str, Any]:
        doc = {
            "_id": new_id(),
            "email": normalise_email(email),
            "name": name.strip(),
            "password_hash": password_hash,
            "plan": "free",
            "role": role,
            "created_at": utcnow(),
        }
        if unverified:
            doc["email_unverified"] = True
        try:
            await self.users.insert_one(doc)
        except DuplicateKeyError:
            raise EmailTaken(email) from None
        return doc

    async def by_email(self, email: str) -> dict[str, Any] | None:
        return await self.users.find_one(by_email(email))

    async def id_and_name_by_email(self, email: str) -> dict[str, Any] | None:
        return await self.users.find_one(by_email(email), {"name": 1})

    async def by_id(self, user_id: str) -> dict[str, Any] | None:
        return await self.users.find_one(by_id(user_id))

    async def plan_of(self, user_id: str) -> str:
        """The user's plan id; ``free`` for a user without one (or no longer known)."""
        user = await self.users.find_one(by_id(user_id), {"plan": 1})
        return str(user.get("plan") or "free") if user else "free"

    async def names(self, user_ids: list[str]) -> dict[str, str]:
        return {u["_id"]: u.get("name", "") async for u in self.users.find(by_ids(user_ids), {"name": 1})}

    # Each change of the user calls ``user_changed`` after the write: the user cache (/me) drops
    # its copy on every replica (cache/users.py).

    async def set_password_hash(self, user_id: str, password_hash: str) -> None:
        await self.users.update_one(by_id(user_id), {"$set": {"password_hash": password_hash}})
        await user_changed(user_id)

    async def set_name(self, user_id: str, name: str) -> None:
        await self.users.update_one(by_id(user_id), {"$set": {"name": name}})
        await user_changed(user_id)

    async def set_plan(self, user_id: str, plan: str) -> None:
        await self.users.update_one(by_id(user_id), {"$set": {"plan": plan}})
        await user_changed(user_id)



    # -- email confirmation -------------------------------------------------------------------

    async def set_email_check(self, user_id: str, token_hash: str, expires_at: datetime) -> bool:
        """Store a new confirmation token (the previous one stops working); False when the email
        is confirmed already (or the account is gone)."""
        result = await self.users.update_one(
            unverified(user_id), {"$set": {"email_check": {"hash": token_hash, "expires_at": expires_at}}}
        )
        return result.matched_count == 1

    async def confirm_email(self, token_hash: str) -> dict[str, Any] | None:
        """Confirm the email the token was sent to; the account, or None for an unknown, used or
        expired token (one conditional update: a token works once)."""
        now = utcnow()
        user = await self.users.find_one_and_update(
            email_check(token_hash, now),
            {"$unset": {"email_check": "", "email_unverified": ""}, "$set": {"email_verified_at": now}},
            return_document=ReturnDocument.AFTER,
        )
        if user is not None:
            await user_changed(user["_id"])
        return user

    async def email_proven(self, user_id: str) -> None:
        """A password reset through the emailed link proves the address too."""
        await self.users.update_one(
            unverified(user_id),
            {"$unset": {"email_check": "", "email_unverified": ""}, "$set": {"email_verified_at": utcnow()}},
        )
        await user_changed(user_id)
