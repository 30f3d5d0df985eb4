"""Limits on keys in Chromium: chosen on the consent page and the keys page, shown on the person's pages."""

import re
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from accounts.models import ApiKey
from tests.browser.flow import consent_form, decide, key_option, log_in, start_at_the_app

pytestmark = pytest.mark.browser

PHONE = {"width": 375, "height": 740}


def fits_the_screen(page, width: int) -> bool:
    return page.evaluate("document.documentElement.scrollWidth") <= width


def test_limits_chosen_on_the_consent_page_go_on_the_apps_key_and_are_shown(
    page, provider, example_app, alice, screenshot
):
    start_at_the_app(page, example_app, provider)
    log_in(page, alice)
    expect(consent_form(page)).to_be_visible()
    expect(key_option(page, "new")).to_be_checked()
    limits = page.get_by_test_id("new-key-limits")
    expect(limits.get_by_label("Expires")).to_have_value("90")  # the operator's default
    limits.get_by_label("Expires").select_option("7")
    limits.get_by_label("Allowed addresses").fill("127.0.0.1\n2001:db8::/32")
    screenshot(page, "consent-limits")
    decide(page, "allow")
    expect(page.locator("body")).to_have_attribute("data-outcome", "connected")

    key = ApiKey.objects.get(user=alice, name="localhost")
    assert abs(key.expires_at - (timezone.now() + timedelta(days=7))) < timedelta(minutes=2)
    assert key.allowed_networks == ["127.0.0.1/32", "2001:db8::/32"]

    page.goto(provider + "/keys/")
    row = page.get_by_test_id("key-list").locator("tr", has_text="localhost")
    expect(row.get_by_test_id("key-expiry")).to_contain_text(re.compile(r"Expires\s+\S+ \S+ UTC \(in 6\sdays"))
    expect(row.get_by_test_id("key-networks")).to_have_text("Only from 127.0.0.1/32, 2001:db8::/32")
    expect(row.get_by_test_id("key-status")).to_have_text("Active")
    page.goto(provider + "/apps/")
    expect(page.get_by_test_id("app-list")).to_contain_text("Only from 127.0.0.1/32, 2001:db8::/32")
    screenshot(page, "connected-apps-limits")


def test_a_bad_allowlist_on_the_consent_page_is_explained_and_nothing_is_sent(page, provider, example_app, alice):
    start_at_the_app(page, example_app, provider)
    log_in(page, alice)
    page.get_by_test_id("new-key-limits").get_by_label("Allowed addresses").fill("192.168.1.5/24")
    with page.expect_response(lambda r: r.request.method == "POST") as posted:
        page.locator("button[name=decision][value=allow]").click()
    assert posted.value.status == 400
    expect(page.locator(".field-error")).to_contain_text("did you mean 192.168.1.0/24")
    expect(consent_form(page)).to_be_visible()
    assert not ApiKey.objects.filter(user=alice).exists()


@pytest.mark.browser_context_args(java_script_enabled=False)
def test_a_key_with_a_date_and_addresses_is_created_and_changed_on_the_keys_page(page, provider, alice, screenshot):
    page.goto(provider + "/keys/")
    log_in(page, alice)
    page.goto(provider + "/keys/")
    day = (timezone.now() + timedelta(days=45)).date()
    page.get_by_label("Name").fill("CI server")
    page.get_by_label("Expires").select_option("date")
    page.get_by_label("Expiry date").fill(day.isoformat())
    page.get_by_label("Allowed addresses").fill("203.0.113.0/24")
    screenshot(page, "keys-create-limits")
    page.get_by_role("button", name="Create key").click()
    expect(page.get_by_test_id("new-key")).to_be_visible()

    page.goto(provider + "/keys/")
    row = page.get_by_test_id("key-list").locator("tr", has_text="CI server")
    expect(row.get_by_test_id("key-expiry")).to_contain_text(f"Expires {day.isoformat()} 00:00 UTC")
    expect(row.get_by_test_id("key-networks")).to_have_text("Only from 203.0.113.0/24")
    screenshot(page, "keys-limits")

    row.get_by_role("link", name=re.compile("Limits")).click()
    expect(page.get_by_label("Expires")).to_have_value("keep")
    expect(page.get_by_label("Allowed addresses")).to_have_value("203.0.113.0/24")
    page.get_by_label("Expires").select_option("never")
    page.get_by_label("Allowed addresses").fill("")
    page.get_by_role("button", name="Save limits").click()
    row = page.get_by_test_id("key-list").locator("tr", has_text="CI server")
    expect(row.get_by_test_id("key-expiry")).to_have_text("Never expires")
    expect(row.get_by_test_id("key-networks")).to_have_text("Any address")

    page.set_viewport_size(PHONE)
    screenshot(page, "keys-limits-phone")
    assert fits_the_screen(page, PHONE["width"]), "the keys page scrolls sideways on a phone"


def test_an_expired_key_looks_expired(page, provider, alice):
    from accounts.audit import SYSTEM
    from accounts.limits import KeyLimits
    from accounts.services import key_create

    key, _ = key_create(
        user=alice, name="old laptop", context=SYSTEM, limits=KeyLimits(expires_at=timezone.now() + timedelta(1))
    )
    ApiKey.objects.filter(pk=key.pk).update(expires_at=timezone.now() - timedelta(days=1))
    page.goto(provider + "/keys/")
    log_in(page, alice)
    page.goto(provider + "/keys/")
    row = page.get_by_test_id("key-list").locator("tr", has_text="old laptop")
    expect(row.get_by_test_id("key-status")).to_have_text("Expired")
    expect(row.get_by_test_id("key-expiry")).to_contain_text("Expired")
    expect(row.get_by_role("link", name=re.compile("Limits"))).to_have_count(0)
