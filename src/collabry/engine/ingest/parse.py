"""Parse PDF, plain text and Markdown into normalised text segments, streaming from a file.

Each parser yields ``Segment``s (a PDF page, or a block of paragraphs of a text file) so a large
source never has to be in memory at once. Problems raise ``ParseError`` with a reason a person can
act on; the pipeline stores it on the source.
"""

from __future__ import annotations

import codecs
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

KINDS = {"application/pdf": "pdf", "text/plain": "text", "text/markdown": "markdown", "text/x-markdown": "markdown"}
TEXT_BLOCK_BYTES = 256 * 1024


class ParseError(Exception):
    """The file cannot be turned into text; the message is stored as the source's error."""


@dataclass(frozen=True, slots=True)
class Segment:
    text: str
    page: int | None = None  # 1-based page of a PDF


def kind_of(content_type: str) -> str | None:
    """``pdf``, ``text`` or ``markdown`` for a supported media type (parameters ignored), else None."""
    return KINDS.get(content_type.split(";", 1)[0].strip().lower())


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_SPACES = re.compile(r"[ \t\u00a0\u2000-\u200b\u3000]+")
_HYPHEN_BREAK = re.compile(r"(\w)-\n(\w)")
_MANY_BLANKS = re.compile(r"\n{3,}")


def normalise(text: str) -> str:
    """NFKC, no control characters, single spaces, words re-joined across hyphenated line breaks."""
    text = unicodedata.normalize("NFKC", text).replace("\r\n", "\n").replace("\r", "\n")
    text = _CONTROL.sub(" ", text)
    text = _HYPHEN_BREAK.sub(r"\1\2", text)
    lines = [_SPACES.sub(" ", line).strip() for line in text.split("\n")]
    return _MANY_BLANKS.sub("\n\n", "\n".join(lines)).strip()


_MD_IMAGE = re.compile(r"!\[([^\]]*)\]\([^)]*\)")
_MD_LINK = re.compile(r"\[([^\]]+)\]\([^)]*\)")
_MD_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+", re.M)
_MD_EMPHASIS = re.compile(r"(\*\*|__|\*|_|~~|`)(?=\S)(.+?)(?<=\S)\1")
_MD_RULE = re.compile(r"^\s{0,3}([-*_]\s*){3,}$", re.M)
_MD_QUOTE = re.compile(r"^\s{0,3}>\s?", re.M)
_MD_FENCE = re.compile(r"^\s{0,3}(```|~~~).*$", re.M)
_MD_HTML = re.compile(r"<[^>\n]+>")


def strip_markdown(text: str) -> str:
    """Markdown syntax out, words kept (link and image text stay, targets go)."""
    for pattern, repl in (
        (_MD_FENCE, ""),
        (_MD_IMAGE, r"\1"),
        (_MD_LINK, r"\1"),
        (_MD_HEADING, ""),
        (_MD_RULE, ""),
        (_MD_QUOTE, ""),
        (_MD_HTML, " "),
    ):
        text = pattern.sub(repl, text)
    return _MD_EMPHASIS.sub(r"\2", text)


def parse_file(path: Path, kind: str) -> Iterator[Segment]:
    if kind == "pdf":
        yield from _pdf(path)
    elif kind in ("text", "markdown"):
        yield from _text(path, markdown=kind == "markdown")
    else:
        raise ParseError(f"unsupported kind {kind!r}")


def _pdf(path: Path) -> Iterator[Segment]:
    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    with path.open("rb") as fh:
        if fh.read(5) != b"%PDF-":
            raise ParseError("the file is not a PDF (no %PDF header)")
        fh.seek(0)
        try:
            reader = PdfReader(fh, strict=False)
            if reader.is_encrypted:
                # An empty user password still opens many "protected" PDFs; anything else cannot be read.
                try:
                    opened = bool(reader.decrypt(""))
                except Exception:
                    opened = False
                if not opened:
                    raise ParseError("the PDF is encrypted with a password; upload an unprotected copy")
            pages = len(reader.pages)
        except ParseError:
            raise
        except (PyPdfError, ValueError, KeyError, TypeError, OSError, AssertionError, RecursionError) as exc:
            raise ParseError(f"the PDF is damaged or unreadable ({type(exc).__name__})") from None
        if pages == 0:
            raise ParseError("the PDF has no pages")
        for number in range(pages):
            try:
                raw = reader.pages[number].extract_text() or ""
            except Exception as exc:  # one broken page should not hide the rest, but a broken file fails
                raise ParseError(f"page {number + 1} of the PDF cannot be read ({type(exc).__name__})") from None
            text = normalise(raw)
            if text:
                yield Segment(text, page=number + 1)


def _text(path: Path, *, markdown: bool) -> Iterator[Segment]:
    decoder = codecs.getincrementaldecoder("utf-8")(errors="strict")
    pending = ""
    with path.open("rb") as fh:
        first = True
        while True:
            block = fh.read(TEXT_BLOCK_BYTES)
            if first:
                if block.startswith(codecs.BOM_UTF8):
                    block = block[len(codecs.BOM_UTF8) :]
                first = False
            if b"\x00" in block:
                raise ParseError("the file is binary, not text (it contains NUL bytes)")
            try:
                pending += decoder.decode(block, final=not block)
            except UnicodeDecodeError:
                raise ParseError("the file is not valid UTF-8 text") from None
            if not block:
                break
            # Hand on everything up to the last paragraph break; keep the tail for the next block.
            cut = pending.rfind("\n\n")
            if cut > 0:
                ready, pending = pending[:cut], pending[cut:]
                segment = _text_segment(ready, markdown)
                if segment:
                    yield segment
    segment = _text_segment(pending, markdown)
    if segment:
        yield segment


def _text_segment(text: str, markdown: bool) -> Segment | None:
    if _mostly_unprintable(text):
        raise ParseError("the file is binary, not text")
    text = normalise(strip_markdown(text) if markdown else text)
    return Segment(text) if text else None


def _mostly_unprintable(text: str) -> bool:
    sample = text[:4096]
    if not sample:
        return False
    bad = sum(1 for ch in sample if unicodedata.category(ch) in ("Cc", "Co", "Cn", "Cs") and ch not in "\n\r\t")
    return bad / len(sample) > 0.1
