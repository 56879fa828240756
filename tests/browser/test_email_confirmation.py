"""Sign-up where the operator requires confirmed emails (COLLABRY_EMAIL_VERIFICATION=required),
against a real SMTP server (aiosmtpd): no sign-in before the emailed link is opened, the link sent
again from the sign-in form, the confirmation page."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import expect

from .conftest import axe_violations
from .flows import PASSWORD, new_email
from .mail import Inbox, link_path, smtp_server

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def inbox_and_env() -> Iterator[tuple[Inbox, dict[str, str]]]:
    with smtp_server() as served:
        yield served


@pytest.fixture(scope="module")
def stack_env(inbox_and_env: tuple[Inbox, dict[str, str]]) -> dict[str, str]:
    return {**inbox_and_env[1], "COLLABRY_EMAIL_VERIFICATION": "required"}


def test_sign_up_confirm_the_email_then_sign_in(stack, new_page, inbox_and_env):
    inbox = inbox_and_env[0]
    page = new_page()
    email = new_email("rosa")
    page.goto("/register")
    page.get_by_label("Name").fill("Rosa")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_role("status")).to_have_text(f"We sent a confirmation link to {email}. Open it, then sign in.")
    expect(page.get_by_role("heading", name="Create your Collabry account")).to_be_visible()  # not signed in
    first = inbox.take(email)
    assert "Confirm your email" in first["Subject"]

    # signing in before the confirmation: refused, with a way to get the link again
    page.get_by_role("link", name="Sign in", exact=True).click()
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_have_text(
        "Confirm your email address first: open the link we sent you, or ask for a new one."
    )
    assert axe_violations(page) == []
    page.get_by_role("button", name="Send the link again").click()
    resent = re.compile(r"^If an account with this email .+ new link is on its way\.$")
    expect(page.get_by_role("status")).to_have_text(resent)
    path = link_path(inbox.take(email), "verify-email")  # the newest link is the one that works

    page.goto(path)
    expect(page.get_by_role("status")).to_have_text(f"Your email address {email} is confirmed.")
    assert axe_violations(page) == []
    page.get_by_role("link", name="Sign in", exact=True).click()
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Notebooks", level=1)).to_be_visible()

    # the link works once
    other = new_page()
    other.goto(path)
    expect(other.get_by_role("alert")).to_have_text("This link is unknown, already used or expired. Ask for a new one.")
    # and the page offers to type the code printed in the email instead
    expect(other.get_by_label("Code from the email")).to_be_visible()


def test_an_invalid_confirmation_link_offers_a_new_one(stack, new_page):
    page = new_page()
    page.goto("/verify-email?token=" + "x" * 40)
    expect(page.get_by_role("alert")).to_have_text("This link is unknown, already used or expired. Ask for a new one.")
    assert axe_violations(page) == []
    page.get_by_label("Email", exact=True).fill(new_email("lost"))
    page.get_by_role("button", name="Send the link again").click()
    # the same answer whether or not such an account waits for its confirmation
    expect(page.get_by_role("status")).to_have_text(
        re.compile(r"^If an account with this email .+ new link is on its way\.$")
    )
