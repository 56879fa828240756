"""Every index of the application, declared here and nowhere else; ``migrate`` creates them.

Each index serves query shapes declared in the repositories (``queries.SHAPES``); the query-plan
test explains every shape against thousands of documents and fails on a collection scan, so an
index missing here (or one the planner cannot use) is found before production.

DocumentDB builds a compound index from one term per field unless asked for an ordered index: a
query on ``{user_id, deleted_at: null}`` then reads the ``deleted_at: null`` entries of every
user's documents and intersects them with the user's own. Ordered indexes (``ORDERED``) hold the
fields as one key, so such a query reads only the user's part: every compound index whose queries
pin a value many users share (null, false) is ordered. A changed index gets a new name (``migrate``
creates indexes by name; the old name goes to ``RETIRED``, which ``migrate`` drops).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Index:
    collection: str
    keys: list[tuple[str, int]]
    options: dict[str, Any] = field(default_factory=dict)


# DocumentDB's composite-term index (FerretDB passes the option through to createIndexes).
ORDERED: dict[str, Any] = {"enableOrderedIndex": True}


INDEXES: tuple[Index, ...] = (
    Index("users", [("email", 1)], {"unique": True, "name": "email_unique"}),
    Index("users", [("email_check.hash", 1)], {"name": "email_check"}),  # confirmation links
    Index("refresh_tokens", [("family_id", 1)], {"name": "family"}),
    # a user's password-reset tokens, all dropped after a reset (db/password_resets.py)
    Index("password_resets", [("user_id", 1)], {"name": "user"}),
    # one child per token: the single-use guarantee of refresh rotation (see auth/refresh.py).
    # Partial: a family's first token has no parent, and a unique index counts a missing field as
    # null, so a plain one would admit a single family.
    Index(
        "refresh_tokens",
        [("parent", 1)],
        {"unique": True, "name": "parent_unique", "partialFilterExpression": {"parent": {"$exists": True}}},
    ),
    Index("refresh_tokens", [("expires_at", 1)], {"name": "expires"}),
    Index("auth_sessions", [("user_id", 1), ("revoked_at", 1)], {"name": "user_active_ordered", **ORDERED}),
    Index("auth_sessions", [("expires_at", 1)], {"name": "expires"}),
    # board documents: a board's updates in insertion order (realtime/boards.py)
    Index("board_updates", [("board_id", 1), ("_id", 1)], {"name": "board_order"}),
    Index("board_snapshots", [("board_id", 1), ("version", -1)], {"name": "board_latest"}),
    # worker ledger: catch-up planning, `worker status`, retention
    Index("job_runs", [("job", 1), ("slot_at", -1)], {"name": "job_slot"}),
    Index("job_runs", [("started_at", -1)], {"name": "started"}),
    # engine: chunk vectors by user and vector id, by source version, and in reading order
    Index("chunks", [("user_id", 1), ("seq", 1)], {"unique": True, "name": "user_seq"}),
    Index("chunks", [("user_id", 1), ("source_id", 1), ("ingest_id", 1)], {"name": "user_source"}),
    Index("chunks", [("source_id", 1), ("ord", 1)], {"name": "source_order"}),
    # AI sessions and their messages (engine writes, gateway /api/ai/sessions reads)
    Index("ai_sessions", [("user_id", 1), ("updated_at", -1)], {"name": "user_recent"}),
    Index("ai_messages", [("session_id", 1), ("created_at", 1)], {"name": "session_order"}),
    # study domain (src/collabry/domain): listings, the recycle bin, counters, idempotency keys
    Index("boards", [("owner_id", 1), ("deleted_at", 1)], {"name": "owner_live_ordered", **ORDERED}),
    Index("boards", [("deleted_at", 1)], {"name": "deleted"}),
    Index("board_members", [("user_id", 1)], {"name": "user"}),
    Index("board_members", [("board_id", 1), ("created_at", 1)], {"name": "board"}),
    Index("notebooks", [("user_id", 1), ("deleted_at", 1)], {"name": "user_live_ordered", **ORDERED}),
    Index("notebooks", [("deleted_at", 1)], {"name": "deleted"}),
    # user first: retrieval asks for a user's ready sources of any notebook
    Index("sources", [("user_id", 1), ("notebook_id", 1), ("deleted_at", 1)], {"name": "user_notebook", **ORDERED}),
    Index("sources", [("deleted_at", 1)], {"name": "deleted"}),
    Index("sources", [("file", 1)], {"name": "file"}),  # the worker's orphan-upload sweep
    Index("usage", [("date", 1)], {"name": "date"}),
    # account export and erasure (db/accounts.py) find these by user
    Index("usage", [("user_id", 1)], {"name": "user"}),
    Index("plan_counts", [("user_id", 1)], {"name": "user"}),
    Index("coupon_redemptions", [("user_id", 1)], {"name": "user"}),
    Index("checkouts", [("key", 1)], {"unique": True, "name": "key_unique"}),
    Index("checkouts", [("user_id", 1), ("created_at", -1)], {"name": "user"}),
    Index("subscriptions", [("status", 1), ("current_period_end", 1)], {"name": "status_end"}),
    Index("invoices", [("user_id", 1), ("created_at", -1)], {"name": "user"}),
    Index("notifications", [("dedupe_key", 1)], {"unique": True, "name": "dedupe_unique"}),
    Index("notifications", [("user_id", 1), ("created_at", -1)], {"name": "user_recent"}),
    Index("notifications", [("user_id", 1), ("read", 1)], {"name": "user_read_ordered", **ORDERED}),
    Index("planner_tasks", [("user_id", 1), ("due_at", 1)], {"name": "user_due"}),
    Index("planner_tasks", [("done", 1), ("due_at", 1)], {"name": "open_due_ordered", **ORDERED}),
)


# Indexes an earlier version created, replaced by one above under a new name: ``migrate`` drops them
# (an index nobody queries still costs every write).
RETIRED: tuple[tuple[str, str], ...] = (
    ("auth_sessions", "user_active"),
    ("boards", "owner_live"),
    ("notebooks", "user_live"),
    ("sources", "notebook"),
    ("notifications", "user_read"),
    ("planner_tasks", "open_due"),
)
