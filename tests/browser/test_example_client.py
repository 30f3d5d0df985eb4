"""The whole flow in Chromium, started from the example client on another origin."""

import re

import pytest
from playwright.sync_api import expect

from accounts.audit import SYSTEM
from accounts.models import ApiKey
from accounts.services import key_create
from tests.browser.flow import consent_form, decide, key_option, log_in, page_errors, start_at_the_app

pytestmark = pytest.mark.browser


def test_the_example_app_gets_a_new_key_and_calls_the_api_with_it(page, provider, example_app, alice, screenshot):
    errors = page_errors(page)
    token_calls, callbacks = [], []
    page.on("request", lambda r: r.url == f"{provider}/getKeys/token" and token_calls.append(r))
    page.on("request", lambda r: r.url.startswith(example_app.callback_url) and callbacks.append(r))
    page.goto(example_app.start_url(provider))
    expect(page.get_by_role("button", name="Connect with Keygrant")).to_be_enabled()
    screenshot(page, "example-app")

    start_at_the_app(page, example_app, provider)
    expect(page).to_have_url(re.compile(re.escape(provider) + r"/accounts/login/\?next=/getKeys/authorize%3F"))
    screenshot(page, "login")
    log_in(page, alice)

    expect(page).to_have_url(re.compile(re.escape(provider) + r"/getKeys/authorize\?"))
    expect(page.get_by_test_id("client-host")).to_have_text("localhost")
    expect(page.get_by_test_id("loopback-notice")).to_be_visible()
    expect(key_option(page, "new")).to_be_checked()
    expect(consent_form(page)).to_contain_text("Create a new key for localhost")
    screenshot(page, "consent")
    key_option(page, "new").check()
    decide(page, "allow")

    page.wait_for_url(example_app.callback_url + "**")
    expect(page.locator("body")).to_have_attribute("data-outcome", "connected")
    expect(page.locator("#user-name")).to_have_text("Alice Liddell")
    expect(page.locator("#username")).to_have_text("alice")
    key = ApiKey.objects.get(user=alice)
    expect(page.locator("#key-name")).to_have_text(key.name)
    expect(page.locator("#key-prefix")).to_have_text(key.prefix)
    screenshot(page, "callback-connected")

    # The exchange really crossed origins, and the page never shows the key.
    assert [r.method for r in token_calls] == ["POST"]
    assert token_calls[0].headers["origin"] == example_app.origin
    assert token_calls[0].response().headers["access-control-allow-origin"] == "*"
    assert key.plaintext() not in page.content()
    assert "referer" not in callbacks[0].all_headers(), "the consent page's URL must not reach the app as a Referer"
    assert "code=" not in page.url, "the callback page drops the one-time code from the address bar"
    assert errors == []


def test_deny_sends_access_denied_back_to_the_app(page, provider, example_app, alice, screenshot):
    start_at_the_app(page, example_app, provider)
    log_in(page, alice)
    decide(page, "deny")

    page.wait_for_url(example_app.callback_url + "**")
    expect(page.locator("body")).to_have_attribute("data-outcome", "denied")
    expect(page.locator("#status")).to_contain_text("error=access_denied")
    expect(page.locator("#result")).to_be_hidden()
    screenshot(page, "callback-denied")
    assert not ApiKey.objects.filter(user=alice).exists()


def test_choosing_an_existing_key_hands_over_that_key_and_is_preselected_next_time(page, provider, example_app, alice):
    laptop, _ = key_create(user=alice, name="laptop", context=SYSTEM)
    start_at_the_app(page, example_app, provider)
    log_in(page, alice)
    expect(key_option(page, "new")).to_be_checked()
    expect(consent_form(page)).to_contain_text("laptop")
    key_option(page, str(laptop.pk)).check()
    decide(page, "allow")

    expect(page.locator("body")).to_have_attribute("data-outcome", "connected")
    expect(page.locator("#key-name")).to_have_text("laptop")
    expect(page.locator("#key-prefix")).to_have_text(laptop.prefix)
    assert ApiKey.objects.filter(user=alice).count() == 1, "no new key was made"

    # Second run, same browser: still signed in, and the earlier choice is pre-selected.
    start_at_the_app(page, example_app, provider)
    expect(page.get_by_test_id("client-host")).to_have_text("localhost")
    expect(key_option(page, str(laptop.pk))).to_be_checked()
    expect(key_option(page, "new")).not_to_be_checked()


def test_after_a_new_key_was_created_the_next_run_preselects_a_new_key_again(page, provider, example_app, alice):
    start_at_the_app(page, example_app, provider)
    log_in(page, alice)
    decide(page, "allow")
    expect(page.locator("body")).to_have_attribute("data-outcome", "connected")
    created = ApiKey.objects.get(user=alice)

    start_at_the_app(page, example_app, provider)
    expect(key_option(page, str(created.pk))).to_be_visible()
    expect(key_option(page, "new")).to_be_checked()
    expect(key_option(page, str(created.pk))).not_to_be_checked()
