"""Parsing and chunking without any service: boundaries, overlap, bounds and clear errors."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from collabry.engine.ingest.chunk import chunk_segments, sentences
from collabry.engine.ingest.parse import ParseError, Segment, kind_of, normalise, parse_file, strip_markdown


def paragraphs(n: int, sentences_each: int = 6) -> str:
    return "\n\n".join(
        " ".join(f"Paragraph {p} sentence {s} explains an idea about topic {p}." for s in range(sentences_each))
        for p in range(n)
    )


def test_chunks_respect_size_and_end_on_sentence_boundaries() -> None:
    chunks = list(chunk_segments([Segment(paragraphs(10))], size=400, overlap=100))
    assert len(chunks) > 5
    assert [c.ord for c in chunks] == list(range(len(chunks)))
    for chunk in chunks:
        assert len(chunk.text) <= 400
        assert chunk.text.endswith(".")
        assert chunk.text[0].isupper()


def test_consecutive_chunks_overlap_by_whole_sentences() -> None:
    chunks = list(chunk_segments([Segment(paragraphs(4))], size=400, overlap=150))
    for before, after in itertools.pairwise(chunks):
        carried = sentences(after.text)[0]
        assert carried in before.text  # the next chunk starts with the end of the previous one


def test_every_sentence_is_kept() -> None:
    text = paragraphs(5)
    joined = " ".join(c.text for c in chunk_segments([Segment(text)], size=300, overlap=0))
    for sentence in sentences(text.replace("\n\n", " ")):
        assert sentence in joined


def test_a_giant_sentence_is_cut_at_words() -> None:
    chunks = list(chunk_segments([Segment("word " * 1000)], size=200, overlap=0))
    assert all(len(c.text) <= 200 for c in chunks)
    assert sum(c.text.count("word") for c in chunks) == 1000


def test_pages_are_kept_on_chunks() -> None:
    segments = [Segment(paragraphs(2), page=1), Segment(paragraphs(2), page=2)]
    pages = {c.page for c in chunk_segments(segments, size=300, overlap=0)}
    assert pages == {1, 2}


def test_normalise_joins_hyphenated_breaks_and_spaces() -> None:
    assert normalise("photo-\nsynthesis   is\u00a0 real\x07") == "photosynthesis is real"
    assert normalise("a\n\n\n\nb") == "a\n\nb"


def test_strip_markdown_keeps_words() -> None:
    out = strip_markdown("# Title\n\nSome **bold** and [a link](http://x) and `code`.\n> quote")
    assert out.split() == ["Title", "Some", "bold", "and", "a", "link", "and", "code.", "quote"]


def test_kind_of_media_types() -> None:
    assert kind_of("application/pdf") == "pdf"
    assert kind_of("text/markdown; charset=utf-8") == "markdown"
    assert kind_of("TEXT/PLAIN") == "text"
    assert kind_of("application/zip") is None


def test_text_parser_streams_large_files_in_blocks(tmp_path: Path) -> None:
    path = tmp_path / "big.txt"
    path.write_text(paragraphs(3000))  # ~1.2 MB, several read blocks
    segments = list(parse_file(path, "text"))
    assert len(segments) > 3
    assert sum(s.text.count("Paragraph") for s in segments) == 3000 * 6


@pytest.mark.parametrize(
    ("data", "reason"),
    [(b"caf\xe9 au lait", "not valid UTF-8"), (b"text\x00\x01\x02", "binary"), (b"%PDF-nonsense", "damaged")],
)
def test_unreadable_files_raise_parse_errors(tmp_path: Path, data: bytes, reason: str) -> None:
    path = tmp_path / "f"
    path.write_bytes(data)
    with pytest.raises(ParseError, match=reason):
        list(parse_file(path, "pdf" if data.startswith(b"%PDF") else "text"))


def test_non_pdf_bytes_sent_as_pdf(tmp_path: Path) -> None:
    path = tmp_path / "f.pdf"
    path.write_bytes(b"just text")
    with pytest.raises(ParseError, match="not a PDF"):
        list(parse_file(path, "pdf"))
