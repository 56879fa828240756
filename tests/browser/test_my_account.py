"""The Account screen and password recovery, against a stack that sends email to a real SMTP server
(aiosmtpd): change the name and the password, download the data export, delete the account, and a
forgotten password reset through the emailed link."""

from __future__ import annotations

import json
import re
import zipfile
from collections.abc import Iterator

import pytest
from playwright.sync_api import expect

from .conftest import axe_violations
from .flows import PASSWORD, create_notebook, register
from .mail import Inbox, link_path, smtp_server

pytestmark = pytest.mark.slow

NEW_PASSWORD = "a brand new passphrase 7"


@pytest.fixture(scope="module")
def inbox_and_env() -> Iterator[tuple[Inbox, dict[str, str]]]:
    with smtp_server() as served:
        yield served


@pytest.fixture(scope="module")
def stack_env(inbox_and_env: tuple[Inbox, dict[str, str]]) -> dict[str, str]:
    # one export per hour and user, so the second one meets the limit
    return {**inbox_and_env[1], "COLLABRY_ACCOUNT_EXPORT_LIMIT": "1/3600"}


@pytest.fixture
def inbox(inbox_and_env: tuple[Inbox, dict[str, str]]) -> Inbox:
    return inbox_and_env[0]


def open_account(page) -> None:
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Account").click()
    expect(page.get_by_role("heading", name="Account", level=1)).to_be_visible()


def sign_in(page, email: str, password: str) -> None:
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def test_change_name_and_password(stack, new_page, screens):
    page = new_page()
    email = register(page, "Nora")
    open_account(page)
    expect(page.get_by_role("link", name="Account")).to_have_attribute("aria-current", "page")
    expect(page.get_by_text(email)).to_be_visible()

    page.get_by_label("Name").fill("Nora Lind")
    page.get_by_role("button", name="Save name").click()
    expect(page.get_by_role("status").filter(has_text="Name saved.")).to_be_visible()
    expect(page.locator("header .who")).to_have_text("Nora Lind")  # the header follows at once
    page.reload()
    expect(page.get_by_label("Name")).to_have_value("Nora Lind")  # stored by the server

    # another browser signed in to the account, with live updates connected
    elsewhere = new_page()
    elsewhere.goto("/login")
    sign_in(elsewhere, email, PASSWORD)
    expect(elsewhere.get_by_test_id("connection")).to_have_attribute("data-state", "live")

    # a wrong current password is refused, and says so
    page.get_by_label("Current password").fill("not my password 1")
    page.get_by_label("New password").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Change password").click()
    expect(page.get_by_role("alert")).to_have_text("The current password is wrong.")
    page.get_by_label("Current password").fill(PASSWORD)
    page.get_by_role("button", name="Change password").click()
    expect(page.get_by_role("status").filter(has_text="Password changed.")).to_be_visible()
    expect(page.get_by_role("alert")).to_have_count(0)
    # the other browser is signed out at once and told why; this one stays signed in
    expect(elsewhere.get_by_role("status").filter(has_text="Your password was changed")).to_be_visible()
    expect(elsewhere.get_by_role("heading", name="Sign in to Collabry")).to_be_visible()
    page.reload()
    expect(page.get_by_role("heading", name="Account", level=1)).to_be_visible()
    screens.shot(page, "account")
    assert axe_violations(page) == []

    page.get_by_role("button", name="Sign out").click()
    sign_in(page, email, PASSWORD)
    expect(page.get_by_role("alert")).to_have_text("Wrong email or password.")
    sign_in(page, email, NEW_PASSWORD)
    expect(page.get_by_role("heading", name="Notebooks", level=1)).to_be_visible()


def test_download_my_data(stack, new_page):
    page = new_page()
    email = register(page, "Omar")
    create_notebook(page, "Geology")
    open_account(page)
    with page.expect_download() as info:
        page.get_by_role("button", name="Download my data").click()
    download = info.value
    assert re.fullmatch(r"collabry-export-\d{4}-\d{2}-\d{2}\.zip", download.suggested_filename)
    expect(page.get_by_role("status").filter(has_text=f"Saved {download.suggested_filename}.")).to_be_visible()
    with zipfile.ZipFile(download.path()) as archive:
        account = json.loads(archive.read("account.json"))
    assert account["format"] == "collabry-account-export"
    dumped = json.dumps(account["collections"])
    assert email in dumped and "Geology" in dumped

    # the stack allows one export an hour: the next answer is 429, told with the wait
    page.get_by_role("button", name="Download my data").click()
    expect(page.get_by_role("alert")).to_have_text(
        re.compile(r"^You can download your data a few times an hour only\. Try again in \d+ (minutes|seconds)\.$")
    )


def test_delete_account_then_the_old_password_fails(stack, new_page):
    page = new_page()
    email = register(page, "Pia")
    create_notebook(page, "Botany")
    open_account(page)
    page.get_by_role("button", name="Delete my account", exact=True).click()
    confirm = page.get_by_label("Enter your password to confirm")
    expect(confirm).to_be_focused()
    # Cancel leaves everything as it was
    page.get_by_role("button", name="Cancel").click()
    expect(confirm).to_have_count(0)
    page.get_by_role("button", name="Delete my account", exact=True).click()

    confirm.fill("not my password 1")
    page.get_by_role("button", name="Delete my account permanently").click()
    expect(page.get_by_role("alert")).to_have_text("The password is wrong.")
    expect(page.get_by_role("heading", name="Account", level=1)).to_be_visible()  # still signed in
    assert axe_violations(page) == []

    confirm.fill(PASSWORD)
    page.get_by_role("button", name="Delete my account permanently").click()
    expect(page.get_by_role("heading", name="Sign in to Collabry")).to_be_visible()
    expect(page.get_by_role("status").filter(has_text="Your account has been deleted")).to_be_visible()
    assert page.url.endswith("/login")
    page.reload()  # no session survives in this browser
    expect(page.get_by_role("heading", name="Sign in to Collabry")).to_be_visible()

    sign_in(page, email, PASSWORD)
    expect(page.get_by_role("alert")).to_have_text("Wrong email or password.")


def test_forgotten_password_reset_through_the_emailed_link(stack, new_page, inbox):
    page = new_page()
    email = register(page, "Quinn")
    page.get_by_role("button", name="Sign out").click()

    page.get_by_role("link", name="Forgot password?").click()
    expect(page.get_by_role("heading", name="Forgot your password?")).to_be_visible()
    assert axe_violations(page) == []
    page.get_by_label("Email").fill(email.upper())  # the same account, however it is typed
    page.get_by_role("button", name="Send reset link").click()
    neutral = page.get_by_role("status").filter(has_text=re.compile(r"^If an account has this email"))
    expect(neutral).to_be_visible()

    # the answer for an unknown email is the same sentence
    answer = neutral.text_content()
    page.get_by_label("Email").fill("nobody-" + email)
    with page.expect_response(lambda r: r.url.endswith("/api/auth/password/forgot")) as response:
        page.get_by_role("button", name="Send reset link").click()
    assert response.value.status == 202
    expect(page.get_by_role("status")).to_have_text(answer)

    path = link_path(inbox.take(email), "reset-password")
    page.goto(path)
    expect(page.get_by_role("heading", name="Choose a new password")).to_be_visible()
    expect(page.get_by_label("Code from the email")).to_have_count(0)  # the link carries it
    page.get_by_label("New password").fill("abcdefghijkl")  # long enough for the form, too weak for the server
    page.get_by_role("button", name="Set new password").click()
    expect(page.get_by_role("alert")).to_contain_text("Choose a stronger password")
    page.get_by_label("New password").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Set new password").click()
    expect(page.get_by_role("heading", name="Sign in to Collabry")).to_be_visible()
    expect(page.get_by_role("status").filter(has_text="Your password has been changed")).to_be_visible()

    sign_in(page, email, PASSWORD)
    expect(page.get_by_role("alert")).to_have_text("Wrong email or password.")
    sign_in(page, email, NEW_PASSWORD)
    expect(page.get_by_role("heading", name="Notebooks", level=1)).to_be_visible()

    # the link worked once
    other = new_page()
    other.goto(path)
    other.get_by_label("New password").fill("yet another passphrase 8")
    other.get_by_role("button", name="Set new password").click()
    expect(other.get_by_role("alert")).to_have_text("This link is unknown, already used or expired. Ask for a new one.")
