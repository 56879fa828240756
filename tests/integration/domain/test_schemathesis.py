"""Property-based contract test: Schemathesis generates requests from the gateway's own OpenAPI
document and checks every answer against it (no 5xx, documented status, content type, headers and
body schema). The gateway and the engine run as real processes over real Redis and FerretDB.

Path parameters are sometimes swapped for the ids of real seeded resources, so generated requests
reach the success paths (reads, renames, deletions, uploads), not only 404s. Every route is
covered, the AI area included: the engine talks to a fake OpenAI-compatible server that answers a
study tool with the smallest object its grammar (the JSON Schema sent with the request) allows, as
a grammar-constrained local model would, and a chat with plain text.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from typing import Any

import hypothesis
import hypothesis.errors
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    negative_data_rejection,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from collabry.devstack.components import free_port
from collabry.domain import payments
from tests.support.eventually import eventually_sync

from ..helpers import PASSWORD, new_email

MIN_CASES = 2000
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance,
          response_schema_conformance]
NEGATIVE_CHECKS = [*CHECKS, negative_data_rejection]


def _resolve(schema: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = root["$defs"][schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def _smallest(schema: dict[str, Any], root: dict[str, Any]) -> Any:
    """The smallest instance a JSON Schema allows (what a terse, grammar-bound model writes)."""
    schema = _resolve(schema, root)
    if "anyOf" in schema:
        return _smallest(schema["anyOf"][0], root)
    kind = schema.get("type")
    if kind == "object":
        props = schema.get("properties", {})
        return {name: _smallest(props[name], root) for name in schema.get("required", [])}
    if kind == "array":
        return [_smallest(schema["items"], root) for _ in range(schema.get("minItems", 0))]
    if kind == "string":
        return "x" * max(1, schema.get("minLength", 1))
    if kind in ("integer", "number"):
        return schema.get("minimum", 0)
    return False


def _model_reply(body: dict[str, Any]) -> str | None:
    schema = (body.get("response_format") or {}).get("schema")
    return json.dumps(_smallest(schema, schema)) if isinstance(schema, dict) else None


def _user(base: str, tag: str) -> dict[str, Any]:
    email = new_email(tag)
    resp = requests.post(f"{base}/api/auth/register", json={"email": email, "password": PASSWORD, "name": tag},
                         timeout=30)
    assert resp.status_code == 201, resp.text
    resp = requests.post(f"{base}/api/auth/login", json={"email": email, "password": PASSWORD}, timeout=30)
    body = resp.json()
    return {"email": email, "id": body["user"]["id"], "headers": {"Authorization": f"Bearer {body['accessToken']}"}}


def _until_ready(base: str, headers: dict[str, str], notebook: str, source: str) -> None:
    def indexed() -> bool:
        resp = requests.get(f"{base}/api/notebooks/{notebook}/sources/{source}", headers=headers, timeout=30)
        status = resp.json()["source"]["status"]
        assert status in ("ready", "processing"), resp.text
        return bool(status == "ready")

    eventually_sync(indexed, 60, "the seeded source to be indexed", interval=0.1)


def _valid_id(value: Any) -> bool:
    return isinstance(value, str) and re.fullmatch(r"[A-Za-z0-9_-]{1,64}", value) is not None


def _user_again(base: str, email: str) -> dict[str, str]:
    resp = requests.post(f"{base}/api/auth/login", json={"email": email, "password": PASSWORD}, timeout=30)
    assert resp.status_code == 200, resp.text
    return {"Authorization": f"Bearer {resp.json()['accessToken']}"}


def _seed(base: str, me: dict[str, Any], friend: dict[str, Any], webhook_secret: str) -> dict[str, list[str]]:
    """Real resources of every kind, so generated requests can hit them."""
    h = me["headers"]

    def post(path: str, body: dict[str, Any], headers: dict[str, str] = h) -> dict[str, Any]:
        resp = requests.post(base + path, json=body, headers=headers, timeout=30)
        assert resp.status_code in (200, 201, 202), (path, resp.text)
        return dict(resp.json())

    board = post("/api/boards", {"title": "Seeded board"})["board"]["id"]
    shared = post("/api/boards", {"title": "Friend's board"}, friend["headers"])["board"]["id"]
    post(f"/api/boards/{shared}/members", {"email": me["email"], "role": "editor"}, friend["headers"])
    post(f"/api/boards/{board}/members", {"email": friend["email"], "role": "viewer"})
    notebook = post("/api/notebooks", {"title": "Seeded notebook"})["notebook"]["id"]
    source = post(f"/api/notebooks/{notebook}/sources", {"title": "Notes", "text": "Cells divide by mitosis."})
    # The AI requests get a notebook of their own: the notebook routes delete and restore theirs.
    study = post("/api/notebooks", {"title": "Study notebook"})["notebook"]["id"]
    material = post(f"/api/notebooks/{study}/sources", {"title": "Cells", "text": "Cells divide by mitosis."})
    _until_ready(base, h, study, material["source"]["id"])  # the study tools need an indexed source
    task = post("/api/planner/tasks", {"title": "Revise", "dueAt": "2031-01-01T09:00:00Z"})["task"]["id"]
    # The fuzzing user pays for the pro plan (its daily AI quota lets the study tools succeed).
    checkout = post("/api/subscription/checkout", {"planId": "pro"})["checkout"]["id"]
    event = json.dumps({"eventId": "seed-pro", "type": "payment.succeeded", "checkoutId": checkout}).encode()
    resp = requests.post(f"{base}/api/webhooks/payments", data=event, timeout=30,
                         headers=payments.signed_headers(webhook_secret, event))
    assert resp.status_code == 200, resp.text
    notes = requests.get(f"{base}/api/notifications", headers=h, timeout=30).json()["notifications"]
    return {
        "board": [board, shared],
        "notebook": [notebook],
        "study": [study, material["source"]["id"]],
        "source": [source["source"]["id"]],
        "task": [task],
        "notification": [n["id"] for n in notes],
        "user": [friend["id"], me["id"]],
    }


def _real_ids(path: str, params: dict[str, Any], ids: dict[str, list[str]]) -> dict[str, Any] | None:
    kind = {"/api/boards": "board", "/api/notebooks": "notebook", "/api/planner": "task",
            "/api/notifications": "notification"}
    prefix = next((k for p, k in kind.items() if path.startswith(p)), None)
    if prefix is None or not ids.get(prefix):
        return None
    real = dict(params)
    if "id" in real:
        real["id"] = ids[prefix][0]
    if "sourceId" in real:
        real["sourceId"] = ids["source"][0]
    if "userId" in real:
        real["userId"] = ids["user"][0]
    return real


class _Sink:
    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        return "250 OK"


@pytest.fixture
def smtp_sink():
    """A real SMTP server that accepts every message: the password-reset mails of the fuzzing."""
    from aiosmtpd.controller import Controller

    port = free_port()
    controller = Controller(_Sink(), hostname="127.0.0.1", port=port)
    controller.start()
    yield port
    controller.stop()


@pytest.mark.timeout(600)
def test_the_gateway_matches_its_openapi_document(spawn, engine, secrets_dir, smtp_sink):
    port = free_port()
    spawn("gateway", "gateway", "--port", str(port), port=port,
          extra_env={"COLLABRY_ENGINE_URL": engine.url, "COLLABRY_AI_LIMIT": "100000/60",
                     "COLLABRY_SMTP_URL": f"smtp://127.0.0.1:{smtp_sink}"})
    base = f"http://127.0.0.1:{port}"
    me, friend = _user(base, "fuzz"), _user(base, "friend")
    ids = _seed(base, me, friend, (secrets_dir / "webhook-secret").read_text().strip())
    engine.fake_llm.responder = _model_reply

    schema = schemathesis.openapi.from_url(f"{base}/api/openapi.json")

    @schema.hook
    def flatmap_path_parameters(context: Any, path_parameters: dict[str, Any]) -> Any:
        real = _real_ids(context.operation.path, path_parameters or {}, ids)
        return st.just(path_parameters) if real is None else st.sampled_from([path_parameters, real])

    @schema.hook
    def flatmap_body(context: Any, body: Any) -> Any:
        # AI requests name a notebook (and sources): sometimes the seeded ones, so answers happen.
        # Only ids that are valid already are swapped: a negative case stays invalid.
        if not isinstance(body, dict) or not _valid_id(body.get("notebookId")):
            return st.just(body)
        sources = body.get("sourceIds")
        if sources is not None and not (isinstance(sources, list) and len(sources) <= 200
                                        and all(_valid_id(s) for s in sources)):
            return st.just(body)
        real = {**body, "notebookId": ids["study"][0]}
        if sources:
            real["sourceIds"] = ids["study"][1:]
        return st.sampled_from([body, real])

    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 35, [op.label for op in operations]
    per_operation = math.ceil(MIN_CASES / len(operations))
    calls: Counter[str] = Counter()
    statuses: Counter[int] = Counter()
    by_operation: Counter[tuple[str, int]] = Counter()
    session = requests.Session()

    for operation in operations:
        for mode, examples, checks in ((GenerationMode.POSITIVE, per_operation, CHECKS),
                                       (GenerationMode.NEGATIVE, per_operation // 2, NEGATIVE_CHECKS)):

            @hypothesis.settings(max_examples=examples, deadline=None, database=None, derandomize=True,
                                 suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.generate])
            @hypothesis.given(case=operation.as_strategy(generation_mode=mode))
            def exercise(case: Any) -> None:
                # Logging out (all sessions) is the auth area's business: it gets the friend's token,
                # so the fuzzing user's token stays valid for the rest of the run.
                caller = friend if operation.tags and "auth" in operation.tags else me  # noqa: B023
                headers = dict(caller["headers"]) if operation.security else {}  # noqa: B023
                response = case.call(base_url=base, session=session, headers=headers, timeout=60)
                if operation.label in ("POST /api/auth/logout", "POST /api/auth/logout-all") \
                        and response.status_code == 204:  # noqa: B023
                    # the revoked session's access token stops at once: the friend logs in again
                    friend["headers"] = _user_again(base, friend["email"])
                calls[operation.label] += 1  # noqa: B023
                statuses[response.status_code] += 1
                by_operation[(operation.label, response.status_code)] += 1  # noqa: B023
                case.validate_response(response, checks=checks, headers=headers)  # noqa: B023

            try:
                exercise()
            except hypothesis.errors.Unsatisfiable:
                # An operation without inputs (e.g. GET /api/plans) has no invalid variant to send.
                assert mode is GenerationMode.NEGATIVE, operation.label

    for (label, status), count in sorted(by_operation.items()):
        print(f"  {label} {status} x{count}")
    total = sum(calls.values())
    print(f"schemathesis: {total} cases over {len(operations)} operations; statuses {dict(sorted(statuses.items()))}")
    assert total >= MIN_CASES, calls
    assert all(status < 500 for status in statuses), statuses
    assert statuses[200] + statuses[201] + statuses[202] + statuses[204] > 100, statuses  # success paths reached
    for tool in ("summarize", "quiz", "flashcards", "mindmap"):  # each study tool answered at least once
        assert by_operation[(f"POST /api/ai/{tool}", 200)] > 0, tool
