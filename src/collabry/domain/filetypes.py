"""What an uploaded file is, decided by its bytes; the client's file name never chooses the type.

Accepted: PDF (``%PDF-`` header), UTF-8 text and Markdown. Everything else (executables, archives,
images, other encodings, binary noise) is refused with 415 before anything is stored. The name is
only a title (reduced to its last path component, control characters removed) and a hint that
UTF-8 text is Markdown.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from urllib.parse import unquote

from ..errors import Invalid, UnsupportedType

PDF_HEADER_WINDOW = 1024  # readers accept the header anywhere in the first KiB

# Formats with a recognisable signature that are not documents we ingest.
REFUSED_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"\x7fELF", "an ELF executable"),
    (b"MZ", "a Windows executable"),
    (b"\xcf\xfa\xed\xfe", "a Mach-O executable"),
    (b"\xce\xfa\xed\xfe", "a Mach-O executable"),
    (b"\xfe\xed\xfa\xcf", "a Mach-O executable"),
    (b"\xca\xfe\xba\xbe", "a Mach-O or Java class file"),
    (b"\x00asm", "a WebAssembly module"),
    (b"PK\x03\x04", "a ZIP archive (or an Office document)"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (b"Rar!", "a RAR archive"),
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"\xd0\xcf\x11\xe0", "an old Office document"),
)

MARKDOWN_NAMES = (".md", ".markdown", ".mdown", ".mkd")
MARKDOWN_SIGNS = re.compile(r"(?m)^(#{1,6} \S|```|~~~|>\s|\s{0,3}[-*+] \S|\d+\. \S)|\[[^\]\n]+\]\([^)\s]+\)")


@dataclass(frozen=True, slots=True)
class Detected:
    kind: str  # pdf | text | markdown
    content_type: str
    extension: str


PDF = Detected("pdf", "application/pdf", "pdf")
TEXT = Detected("text", "text/plain", "txt")
MARKDOWN = Detected("markdown", "text/markdown", "md")


def detect(data: bytes, filename: str | None = None) -> Detected:
    if not data.strip():
        raise Invalid("the file is empty", code="empty_file")
    if b"%PDF-" in data[:PDF_HEADER_WINDOW]:
        return PDF
    for signature, what in REFUSED_SIGNATURES:
        if data.startswith(signature):
            raise UnsupportedType(f"the file is {what}; upload a PDF, plain text or Markdown file")
    text = text_of(data)
    if text is None:
        raise UnsupportedType("the file is neither a PDF nor UTF-8 text; upload a PDF, plain text or Markdown file")
    if (filename or "").lower().endswith(MARKDOWN_NAMES) or MARKDOWN_SIGNS.search(text[:65536]):
        return MARKDOWN
    return TEXT


def text_of(data: bytes) -> str | None:
    """The bytes as text if they are UTF-8 without binary control characters, else None."""
    if b"\x00" in data:
        return None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return None
    sample = text[:65536]
    controls = sum(1 for ch in sample if unicodedata.category(ch) == "Cc" and ch not in "\t\n\r\f\v")
    return None if controls > len(sample) // 100 else text


def safe_title(name: str | None, fallback: str = "Untitled") -> str:
    """A display title from a client-supplied file name: last path component, printable, bounded."""
    # Some clients percent-encode the name (``..%2F..%2Fx``): decode first so no separator hides.
    base = unquote(name or "").replace("\\", "/").rsplit("/", 1)[-1]
    base = "".join(ch for ch in base if unicodedata.category(ch)[0] != "C").strip()
    base = base.strip(". ") if set(base) <= {"."} else base
    return base[:200] or fallback
