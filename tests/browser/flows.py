"""What a person does in the web app, as reusable steps."""

from __future__ import annotations

import re
import secrets
from typing import Any

from playwright.sync_api import expect

PASSWORD = "correct horse 42"

CELLS = (
    "Mitochondria are the powerhouse of the cell. They make ATP by oxidative phosphorylation.\n"
    "Chloroplasts carry out photosynthesis in plant cells, turning light into sugar.\n"
    "Ribosomes build proteins from amino acids following messenger RNA.\n"
)


def new_email(tag: str) -> str:
    return f"{tag}-{secrets.token_hex(4)}@example.com"


def register(page: Any, name: str) -> str:
    """Creates an account through the sign-up form; ends signed in on the notebooks page."""
    email = new_email(name.lower())
    page.goto("/register")
    page.get_by_label("Name").fill(name)
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_role("heading", name="Notebooks", level=1)).to_be_visible()
    return email


def create_notebook(page: Any, title: str) -> None:
    page.goto("/notebooks")
    page.get_by_label("Title").fill(title)
    page.get_by_role("button", name="Create notebook").click()
    page.get_by_role("link", name=title).click()
    expect(page.get_by_role("heading", name=title, level=1)).to_be_visible()


def upload_text(page: Any, filename: str, text: str) -> Any:
    """Uploads a file on the notebook's Sources tab and waits until it is ready."""
    page.get_by_label("File (PDF, text or Markdown, up to 25 MB)").set_input_files(
        files=[{"name": filename, "mimeType": "text/plain", "buffer": text.encode()}]
    )
    page.get_by_role("button", name="Upload").click()
    source = page.get_by_test_id("source").filter(has_text=re.sub(r"\.[^.]+$", "", filename))
    expect(source).to_be_visible()
    # processing -> ready, seen live without a reload
    expect(source.locator("[data-status]")).to_have_attribute("data-status", "ready", timeout=60_000)
    return source


def open_tab(page: Any, name: str) -> None:
    page.get_by_role("navigation", name="Notebook sections").get_by_role("link", name=name).click()
