"""Questions that arrive together share model calls and get the vectors they would get alone."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from collabry.config import load_settings
from collabry.engine.embeddings.batching import QueryBatcher
from collabry.engine.embeddings.local import LocalEmbedder
from tests.support.eventually import eventually

QUESTIONS = [f"What did chapter {n} say about photosynthesis and {word}?" for n, word in
             enumerate(["light", "water", "sugar", "leaves", "roots", "carbon", "oxygen", "energy", "cells", "soil"])]


@pytest.fixture(scope="module")
def embedder() -> LocalEmbedder:
    return LocalEmbedder.from_settings(load_settings({}))


def recording(calls: list[list[str]]) -> Callable[..., Any]:
    """The executor hook, noting what each model call was given."""

    async def run_blocking(fn: Callable[..., Any], texts: list[str]) -> Any:
        calls.append(list(texts))
        return await asyncio.to_thread(fn, texts)

    return run_blocking


async def test_concurrent_questions_share_calls_and_get_their_own_vectors(embedder: LocalEmbedder) -> None:
    calls: list[list[str]] = []
    batcher = QueryBatcher(embedder, recording(calls))
    vectors = await asyncio.gather(*(batcher.embed(q) for q in QUESTIONS))
    assert [len(c) for c in calls] == [len(QUESTIONS)]  # one model call for all of them
    assert sorted(q for c in calls for q in c) == sorted(QUESTIONS)
    alone = embedder.embed(QUESTIONS)
    for question, vector, expected in zip(QUESTIONS, vectors, alone, strict=True):
        assert vector.shape == expected.shape
        assert float(vector @ expected) > 0.9999, question  # padding in a batch changes nothing


async def test_a_lone_question_is_embedded_at_once(embedder: LocalEmbedder) -> None:
    calls: list[list[str]] = []
    batcher = QueryBatcher(embedder, recording(calls))
    first = await batcher.embed(QUESTIONS[0])
    second = await batcher.embed(QUESTIONS[1])
    assert calls == [[QUESTIONS[0]], [QUESTIONS[1]]]
    assert float(first @ second) < 0.9999


async def test_a_failed_call_fails_its_questions_only(embedder: LocalEmbedder) -> None:
    calls: list[list[str]] = []
    record = recording(calls)

    async def failing_once(fn: Callable[..., Any], texts: list[str]) -> Any:
        if not calls:
            calls.append(list(texts))
            raise RuntimeError("the model crashed")
        return await record(fn, texts)

    batcher = QueryBatcher(embedder, failing_once)
    results = await asyncio.gather(*(batcher.embed(q) for q in QUESTIONS[:3]), return_exceptions=True)
    assert all(isinstance(r, RuntimeError) for r in results)
    vector = await batcher.embed(QUESTIONS[3])
    assert np.isclose(np.linalg.norm(vector), 1.0, atol=1e-5)
    assert [len(c) for c in calls] == [3, 1]


async def test_a_caller_that_goes_away_leaves_the_others_their_vectors(embedder: LocalEmbedder) -> None:
    calls: list[list[str]] = []
    record = recording(calls)
    busy, release = asyncio.Event(), asyncio.Event()

    async def held_first(fn: Callable[..., Any], texts: list[str]) -> Any:
        if not calls:
            busy.set()
            await release.wait()  # the model is busy with the first question meanwhile
        return await record(fn, texts)

    batcher = QueryBatcher(embedder, held_first)
    first = asyncio.create_task(batcher.embed(QUESTIONS[0]))
    await busy.wait()
    gone = asyncio.create_task(batcher.embed(QUESTIONS[1]))
    kept = asyncio.create_task(batcher.embed(QUESTIONS[2]))
    await eventually(lambda: batcher.waiting == 2, what="both questions waiting")
    gone.cancel()
    release.set()
    assert (await kept).shape == (embedder.dim,)
    assert (await first).shape == (embedder.dim,)
    assert calls == [[QUESTIONS[0]], [QUESTIONS[2]]]  # the cancelled question was not embedded
    assert gone.cancelled()
