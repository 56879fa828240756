"""Accounts and the rest of the screens: sign-in errors, plans and usage, a phone-sized screen."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from .conftest import axe_violations
from .flows import create_notebook, new_email, register

pytestmark = pytest.mark.slow


def test_sign_in_errors_are_clear_and_sign_out_ends_the_session(stack, new_page):
    page = new_page()
    email = register(page, "Eve")
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    page.reload()  # the refresh cookie is gone too: still signed out
    expect(page.get_by_role("heading", name="Sign in to Collabry")).to_be_visible()

    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill("not the password 1")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_have_text("Wrong email or password.")
    # repeated failures from one address: the limit answers with how long to wait (Retry-After)
    for _ in range(8):
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("button", name="Sign in")).to_be_enabled()
        if "Try again in" in (page.get_by_role("alert").text_content() or ""):
            break
    limited = re.compile(r"^Too many requests\. Try again in \d+ (seconds|minutes)\.$")
    expect(page.get_by_role("alert")).to_have_text(limited)
    assert axe_violations(page) == []


def test_plans_usage_coupon_and_checkout(stack, new_page, screens):
    page = new_page()
    register(page, "Max")
    create_notebook(page, "Chemistry")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Plans & usage").click()
    plans = page.locator("article.plan")
    expect(plans).to_have_count(3)
    expect(page.locator("article.plan.current")).to_contain_text("Your plan")
    expect(page.get_by_text(re.compile(r"^1 of \d+$"))).to_have_count(1)  # one notebook used
    page.get_by_label("Code").fill("NO-SUCH-CODE")
    page.get_by_role("button", name="Check coupon").click()
    expect(page.get_by_test_id("coupon-result")).to_contain_text("Not valid (not found)")
    page.get_by_role("button", name=re.compile("^Choose ")).first.click()
    expect(page.get_by_role("status").filter(has_text="Checkout")).to_be_visible()
    screens.shot(page, "billing")
    assert axe_violations(page) == []


def test_phone_sized_screen(stack, new_page, screens):
    page = new_page(mobile=True)
    register(page, "Ana")
    create_notebook(page, "History")
    page.goto("/notebooks")
    expect(page.get_by_role("link", name="History")).to_be_visible()
    # nothing wider than the screen: no sideways scrolling
    assert page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth")
    screens.shot(page, "notebooks-phone")
    assert axe_violations(page) == []
    # rename, delete (to the recycle bin) and restore
    page.get_by_role("button", name="Rename History").click()
    page.get_by_label("New title for History").fill("World history")
    page.get_by_role("button", name="Save").click()
    notebooks = page.get_by_role("list", name="Notebooks")
    expect(notebooks.get_by_role("link", name="World history")).to_be_visible()
    page.get_by_role("button", name="Delete World history").click()
    expect(notebooks.get_by_role("link")).to_have_count(0)
    page.get_by_role("button", name="Restore World history").click()
    expect(notebooks.get_by_role("link", name="World history")).to_be_visible()

    notebooks.get_by_role("link", name="World history").click()
    page.get_by_role("link", name="Chat").click()
    expect(page.get_by_label("Your question")).to_be_visible()
    assert page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth")


def test_the_access_token_is_renewed_before_it_expires(stack, new_page):
    page = new_page()
    page.clock.install()  # the page's timers and Date under the test's control; time still flows
    register(page, "Tom")
    # the token lives 15 minutes: the app renews it a minute before, on its own
    with page.expect_response(lambda r: r.url.endswith("/api/auth/refresh"), timeout=15_000) as renewal:
        page.clock.fast_forward("14:05")
    assert renewal.value.status == 200
    # and goes on working with the new token
    create_notebook(page, "After the renewal")


def test_recovery_pages_without_email_on_the_server(stack, new_page):
    """This stack has no SMTP server: asking for a link says so instead of pretending to send one."""
    page = new_page()
    page.goto("/login")
    page.get_by_role("link", name="Forgot password?").click()
    expect(page.get_by_role("heading", name="Forgot your password?")).to_be_visible()
    page.get_by_label("Email").fill(new_email("lost"))
    page.get_by_role("button", name="Send reset link").click()
    expect(page.get_by_role("alert")).to_have_text(
        "This server cannot send email, so no link can be sent. Ask its operator for help."
    )
    expect(page.get_by_role("status")).to_have_count(0)

    # a reset link that is not valid
    page.goto("/reset-password?token=" + "y" * 40)
    page.get_by_label("New password").fill("a brand new passphrase 7")
    page.get_by_role("button", name="Set new password").click()
    expect(page.get_by_role("alert")).to_have_text("This link is unknown, already used or expired. Ask for a new one.")
