"""Type detection and titles from file names (pure functions, no services needed)."""

from __future__ import annotations

import pytest

from collabry.domain.filetypes import detect, safe_title
from collabry.errors import Invalid, UnsupportedType


def test_content_decides_not_the_name():
    assert detect(b"%PDF-1.7\n...", "notes.txt").kind == "pdf"
    assert detect(b"\xef\xbb\xbf%PDF-1.4", "x").kind == "pdf"  # header within the first KiB
    assert detect(b"plain words here", "slides.pdf").kind == "text"
    assert detect(b"# Title\n\ntext", "a.txt").kind == "markdown"
    assert detect(b"just text", "a.md").kind == "markdown"  # text with a Markdown name reads as Markdown
    assert detect("Grüße, 你好".encode(), None).kind == "text"


@pytest.mark.parametrize("data", [
    b"\x7fELF\x02\x01", b"MZ\x90\x00", b"\xcf\xfa\xed\xfe\x07", b"PK\x03\x04rest", b"\x1f\x8b\x08",
    b"\x89PNG\r\n", b"GIF89a", b"abc\x00def", "latin-1 é".encode("latin-1"), bytes(range(1, 32)) * 10,
])
def test_binaries_are_refused(data):
    with pytest.raises(UnsupportedType):
        detect(data, "file.pdf")


def test_empty_is_invalid():
    with pytest.raises(Invalid):
        detect(b" \n\t", "x.txt")


@pytest.mark.parametrize("name,title", [
    ("../../etc/passwd", "passwd"), ("..\\..\\boot.ini", "boot.ini"), ("a%2F..%2Fb.txt", "b.txt"),
    ("evil\x00.txt", "evil.txt"), ("..", "Untitled"), ("", "Untitled"), (None, "Untitled"),
    ("x" * 300, "x" * 200), ("Résumé.pdf", "Résumé.pdf"),
])
def test_titles_from_names(name, title):
    assert safe_title(name) == title
