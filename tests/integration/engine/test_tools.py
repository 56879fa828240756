"""Study tools: schema-validated JSON from the model, one repair attempt, 502 when still invalid."""

from __future__ import annotations

import json

from tests.support.engine_fixtures import Seed
from tests.support.fake_openai import FakeOpenAI, Reply

from .conftest import PHOTOSYNTHESIS, REVOLUTION, Api

QUIZ = {
    "questions": [
        {"question": f"Question {i}?", "options": ["a", "b", "c", "d"], "answerIndex": i % 4, "explanation": "why"}
        for i in range(5)
    ]
}


async def run_tool(api: Api, name: str, body: dict[str, object], expect: int = 200) -> dict[str, object]:
    resp = await api.client.post(f"/internal/tools/{name}", json=body, headers=api.headers)
    assert resp.status == expect, await resp.text()
    return dict(await resp.json())


async def notebook(api: Api, seed: Seed) -> tuple[str, str]:
    user = await seed.user()
    nb = await seed.notebook(user)
    await api.add_text(user, nb, PHOTOSYNTHESIS, "Biology")
    await api.add_text(user, nb, REVOLUTION, "History")
    return user, nb


async def test_each_tool_returns_its_schema(api: Api, seed: Seed, fake_llm: FakeOpenAI) -> None:
    user, nb = await notebook(api, seed)
    body = {"userId": user, "notebookId": nb}
    fake_llm.push(
        Reply(text=json.dumps({"summary": "Plants and revolutions.", "keyPoints": ["Chloroplasts", "1789"]})),
        Reply(text="```json\n" + json.dumps(QUIZ) + "\n```"),
        Reply(text=json.dumps({"cards": [{"front": "Bastille?", "back": "1789"}] * 3})),
        Reply(text=json.dumps({"root": {"title": "Notes", "children": [{"title": "Biology", "children": []}]}})),
    )
    assert await run_tool(api, "summarize", body) == {
        "summary": "Plants and revolutions.",
        "keyPoints": ["Chloroplasts", "1789"],
    }
    quiz = await run_tool(api, "quiz", {**body, "count": 3})
    assert len(quiz["questions"]) == 3 and quiz["questions"][1]["answerIndex"] == 1
    cards = await run_tool(api, "flashcards", {**body, "count": 5})
    assert cards["cards"][0] == {"front": "Bastille?", "back": "1789"}
    mindmap = await run_tool(api, "mindmap", body)
    assert mindmap["root"]["children"][0] == {"title": "Biology", "children": []}

    requests = fake_llm.chat_requests
    assert requests[0]["response_format"]["type"] == "json_object"
    assert "keyPoints" in json.dumps(requests[0]["response_format"]["schema"])
    material = requests[0]["messages"][1]["content"]
    assert "<<<MATERIAL: Biology>>>" in material and "chloroplasts" in material and "Bastille" in material
    assert "Write 3 multiple-choice questions" in requests[1]["messages"][1]["content"]


async def test_invalid_output_is_repaired_once(api: Api, seed: Seed, fake_llm: FakeOpenAI) -> None:
    user, nb = await notebook(api, seed)
    bad = {
        "questions": [{"question": "Q?", "options": ["only", "three", "options"], "answerIndex": 0, "explanation": "x"}]
    }
    fake_llm.push(Reply(text=json.dumps(bad)), Reply(text=json.dumps(QUIZ)))
    quiz = await run_tool(api, "quiz", {"userId": user, "notebookId": nb, "count": 5})
    assert len(quiz["questions"]) == 5
    repair = fake_llm.chat_requests[1]["messages"]
    assert repair[-2] == {"role": "assistant", "content": json.dumps(bad)}
    assert "invalid" in repair[-1]["content"] and "options" in repair[-1]["content"]


async def test_still_invalid_after_repair_is_502(api: Api, seed: Seed, fake_llm: FakeOpenAI) -> None:
    user, nb = await notebook(api, seed)
    fake_llm.push(Reply(text="Sure! Here is your summary: plants."), Reply(text='{"summary": ""}'))
    error = await run_tool(api, "summarize", {"userId": user, "notebookId": nb}, expect=502)
    assert error["error"]["code"] == "llm_invalid_output"
    assert "summary" in error["error"]["message"]
    assert len(fake_llm.chat_requests) == 2


async def test_tool_inputs_are_checked(api: Api, seed: Seed, fake_llm: FakeOpenAI) -> None:
    user, nb = await notebook(api, seed)
    other = await seed.user()
    assert (await run_tool(api, "quiz", {"userId": other, "notebookId": nb}, expect=404))["error"][
        "code"
    ] == "not_found"
    await run_tool(api, "quiz", {"userId": user, "notebookId": nb, "count": 500}, expect=400)
    await run_tool(api, "poem", {"userId": user, "notebookId": nb}, expect=404)
    empty = await seed.notebook(user)
    assert (await run_tool(api, "summarize", {"userId": user, "notebookId": empty}, expect=409))["error"]["code"] == (
        "no_sources"
    )
    assert fake_llm.chat_requests == []


async def test_material_is_bounded_by_the_token_budget(api: Api, seed: Seed, fake_llm: FakeOpenAI) -> None:
    user = await seed.user()
    nb = await seed.notebook(user)
    await api.add_text(user, nb, (PHOTOSYNTHESIS + "\n\n") * 60, "Long")
    fake_llm.push(Reply(text=json.dumps({"summary": "s", "keyPoints": ["k"]})))
    await run_tool(api, "summarize", {"userId": user, "notebookId": nb})
    sent = sum(len(m["content"]) for m in fake_llm.chat_requests[0]["messages"])
    budget_chars = 1200 * 3.5  # COLLABRY_TOOL_INPUT_TOKENS default x chars per token
    assert sent <= budget_chars + 600
