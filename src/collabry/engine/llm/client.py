"""The ``openai`` client against any OpenAI-compatible server (``COLLABRY_LLM_BASE_URL``).

Streaming answers retry once when the server fails before the first token (a restart, a dropped
connection); after a token has been sent a failure is final, since the client already shows text.
With no base URL configured the engine runs in retrieval-only mode and this client is disabled.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import openai
import structlog

from ...config import Settings

log = structlog.get_logger("collabry.llm")

Message = dict[str, str]


class LLMError(Exception):
    """The model server failed or answered nothing usable; the message is safe to show."""


@dataclass
class Generation:
    """One streamed answer: iterate for text pieces; ``finish_reason`` and ``usage`` are set at the end."""

    finish_reason: str = ""
    usage: dict[str, int] = field(default_factory=dict)
    text: list[str] = field(default_factory=list)


class LLM:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.model = settings.llm_model
        self.enabled = bool(settings.llm_base_url)
        self.client = openai.AsyncOpenAI(
            base_url=settings.llm_base_url or "http://127.0.0.1:9/v1",
            api_key=settings.llm_api_key or "unused",
            timeout=settings.llm_timeout,
            max_retries=0,  # retries are decided here, where it is known whether a token was sent
        )
        self._schema_in_response_format = True
        # The SDK's overloads type each message and response format as its own TypedDicts; this
        # module builds plain dicts of the same shape (an OpenAI-protocol server is the judge).
        self._completions: Any = self.client.chat.completions

    async def close(self) -> None:
        await self.client.close()

    async def ping(self) -> None:
        """Raises unless the server answers ``GET /models`` (for /ready)."""
        if not self.enabled:
            return
        await self.client.models.list(timeout=self.settings.ready_timeout)

    async def stream(
        self, messages: list[Message], generation: Generation, *, max_tokens: int | None = None
    ) -> AsyncIterator[str]:
        """Yield the answer's text pieces; fills ``generation`` as it goes."""
        for attempt in (1, 2):
            sent = False
            try:
                stream = await self._completions.create(
                    model=self.model,
                    messages=messages,
                    stream=True,
                    max_tokens=max_tokens or self.settings.llm_max_tokens,
                    temperature=0.2,
                    stream_options={"include_usage": True},
                )
                try:
                    async for chunk in stream:
                        if chunk.usage is not None:
                            generation.usage = _usage(chunk.usage)
                        if not chunk.choices:
                            continue
                        choice = chunk.choices[0]
                        if choice.finish_reason:
                            generation.finish_reason = choice.finish_reason
                        piece = choice.delta.content if choice.delta else None
                        if piece:
                            sent = True
                            generation.text.append(piece)
                            yield piece
                finally:
                    await stream.close()
                if not generation.finish_reason:
                    raise LLMError("the model server ended the answer without finishing it")
                if not generation.usage:  # servers that ignore stream_options: count the pieces
                    generation.usage = {"promptTokens": 0, "completionTokens": len(generation.text)}
                return
            except Exception as exc:
                # Transport errors surface unwrapped (not as openai.APIError) when a connection drops
                # in the middle of a stream, so every failure of the server counts here.
                log.warning("llm_failed", attempt=attempt, sent=sent, error=str(exc))
                if sent or attempt == 2:
                    raise LLMError(_describe(exc)) from exc

    async def complete_json(self, messages: list[Message], schema: dict[str, Any], *, max_tokens: int) -> str:
        """One non-streamed completion constrained to JSON; the caller validates it."""
        response_format: dict[str, Any] = {"type": "json_object"}
        if self._schema_in_response_format:
            # llama.cpp's server turns the schema into a grammar; others may refuse the extra key.
            response_format["schema"] = schema
        for attempt in (1, 2):
            try:
                answer = await self._completions.create(
                    model=self.model,
                    messages=messages,
                    max_tokens=max_tokens,
                    temperature=0.2,
                    response_format=response_format,
                )
            except openai.BadRequestError as exc:
                if "schema" in response_format:
                    log.info("llm_schema_refused", error=str(exc))
                    self._schema_in_response_format = False
                    response_format = {"type": "json_object"}
                    continue
                raise LLMError(_describe(exc)) from exc
            except (openai.APIError, openai.APIConnectionError) as exc:
                if attempt == 2:
                    raise LLMError(_describe(exc)) from exc
                continue
            if not answer.choices:
                raise LLMError("the model server returned no choices")
            return answer.choices[0].message.content or ""
        raise LLMError("the model server refused the request")


def _usage(usage: Any) -> dict[str, int]:
    return {
        "promptTokens": int(getattr(usage, "prompt_tokens", 0) or 0),
        "completionTokens": int(getattr(usage, "completion_tokens", 0) or 0),
    }


def _describe(exc: Exception) -> str:
    if isinstance(exc, openai.APITimeoutError):
        return "the language model did not answer in time"
    if isinstance(exc, openai.APIConnectionError):
        return "the language model server cannot be reached"
    if isinstance(exc, openai.APIStatusError):
        return f"the language model server answered {exc.status_code}"
    return "the language model server failed"


def loads_json(text: str) -> Any:
    """Parse a model's JSON, tolerating a Markdown code fence around it."""
    text = text.strip()
    if text.startswith("```"):
        text = text.strip("`")
        text = text.split("\n", 1)[1] if "\n" in text else text
        text = text.removesuffix("```").strip()
    return json.loads(text)
