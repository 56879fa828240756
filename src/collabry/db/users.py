"""Users: email is unique and stored lower-cased; passwords only as argon2id hashes."""

from __future__ import annotations

from typing import Any

from pymongo.errors import DuplicateKeyError

from .client import Database, iso, new_id, utcnow


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
    }


class UserRepository:
    def __init__(self, db: Database) -> None:
        self.users = db["users"]

    async def create(self, *, email: str, name: str, password_hash: str, role: str = "user") -> dict[str, Any]:
        doc = {
            "_id": new_id(),
            "email": normalise_email(email),
            "name": name.strip(),
            "password_hash": password_hash,
            "plan": "free",
            "role": role,
            "created_at": utcnow(),
        }
        try:
            await self.users.insert_one(doc)
        except DuplicateKeyError:
            raise EmailTaken(email) from None
        return doc

    async def by_email(self, email: str) -> dict[str, Any] | None:
        return await self.users.find_one({"email": normalise_email(email)})

    async def by_id(self, user_id: str) -> dict[str, Any] | None:
        return await self.users.find_one({"_id": user_id})

    async def set_password_hash(self, user_id: str, password_hash: str) -> None:
        await self.users.update_one({"_id": user_id}, {"$set": {"password_hash": password_hash}})

    async def set_plan(self, user_id: str, plan: str) -> None:
        await self.users.update_one({"_id": user_id}, {"$set": {"plan": plan}})
