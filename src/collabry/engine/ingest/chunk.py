"""Chunking on paragraph and sentence boundaries with overlap, one pass over streamed segments.

A chunk grows paragraph by paragraph (or sentence by sentence inside a long paragraph) up to
``size`` characters; the next chunk starts with the last sentences of the previous one, up to
``overlap`` characters, so an answer that spans a boundary is still found. A single sentence
longer than ``size`` is cut at word boundaries.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from .parse import Segment

_SENTENCE_END = re.compile(r"(?<=[.!?…])[\"')\]]*\s+(?=[\"'(\[]?[A-Z0-9À-ÖØ-Þ])")


@dataclass(frozen=True, slots=True)
class Chunk:
    ord: int
    text: str
    page: int | None = None


def sentences(paragraph: str) -> list[str]:
    return [s.strip() for s in _SENTENCE_END.split(paragraph) if s.strip()]


def _hard_split(text: str, size: int) -> list[str]:
    pieces, current = [], ""
    for word in text.split():
        while len(word) > size:  # a "word" longer than a chunk (e.g. a URL or garbage) is cut
            if current:
                pieces.append(current)
                current = ""
            pieces.append(word[:size])
            word = word[size:]
        if current and len(current) + 1 + len(word) > size:
            pieces.append(current)
            current = word
        else:
            current = f"{current} {word}" if current else word
    if current:
        pieces.append(current)
    return pieces


def _units(segment: Segment, size: int) -> Iterator[tuple[str, bool]]:
    """(text, starts_paragraph) units: whole paragraphs when they fit, else sentences."""
    for paragraph in segment.text.split("\n\n"):
        paragraph = " ".join(paragraph.split())
        if not paragraph:
            continue
        if len(paragraph) <= size:
            yield paragraph, True
            continue
        first = True
        for sentence in sentences(paragraph):
            for piece in [sentence] if len(sentence) <= size else _hard_split(sentence, size):
                yield piece, first
                first = False


def chunk_segments(segments: Iterable[Segment], size: int = 1000, overlap: int = 150) -> Iterator[Chunk]:
    size = max(size, 100)
    overlap = max(0, min(overlap, size // 2))
    parts: list[str] = []
    length = 0
    fresh = 0  # characters not carried over from the previous chunk
    page: int | None = None
    ord_ = 0

    def emit() -> Chunk:
        nonlocal ord_
        text = "\n\n".join(parts)
        chunk = Chunk(ord_, text, page)
        ord_ += 1
        return chunk

    for segment in segments:
        for unit, new_paragraph in _units(segment, size):
            joiner = 2 if parts else 0
            if parts and length + joiner + len(unit) > size and fresh > 0:
                yield emit()
                # Carry the last sentences of the finished chunk, up to `overlap` characters.
                tail: list[str] = []
                tail_len = 0
                for sentence in reversed(sentences(" ".join(parts))):
                    if tail_len + len(sentence) + 1 > overlap:
                        break
                    tail.insert(0, sentence)
                    tail_len += len(sentence) + 1
                parts = [" ".join(tail)] if tail else []
                length = len(parts[0]) if parts else 0
                fresh = 0
                page = segment.page
                joiner = 2 if parts else 0
            if not parts:
                page = segment.page
            # Sentences of one paragraph are joined with a space, paragraphs with a blank line.
            if parts and not new_paragraph:
                parts[-1] = f"{parts[-1]} {unit}"
                length += 1 + len(unit)
            else:
                parts.append(unit)
                length += joiner + len(unit)
            fresh += len(unit)
    if parts and fresh > 0:
        yield emit()
