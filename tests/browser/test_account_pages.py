"""After the flow, the user's own pages show what the app got: keys and connected apps.

The pages are found the way a person finds them, through the site's
navigation, so these tests follow the accounts pages wherever they live.
"""

import re

import pytest
from playwright.sync_api import expect

from accounts.audit import SYSTEM
from accounts.models import ApiKey
from accounts.services import key_create
from tests.browser.flow import decide, log_in, start_at_the_app

pytestmark = pytest.mark.browser

PHONE = {"width": 375, "height": 740}


@pytest.fixture
def granted_page(page, provider, example_app, alice):
    """Alice has a key of her own and has just let the example app create one."""
    key_create(user=alice, name="laptop", context=SYSTEM)
    start_at_the_app(page, example_app, provider)
    log_in(page, alice)
    decide(page, "allow")
    expect(page.locator("body")).to_have_attribute("data-outcome", "connected")
    return page


def nav_link(page, name: str):
    return page.get_by_role("navigation").get_by_role("link", name=re.compile(name, re.IGNORECASE))


def open_keys_page(page, provider: str) -> None:
    """The keys page: the navigation's "API keys" link, or the home page when there is none."""
    page.goto(provider + "/")
    link = nav_link(page, r"^\s*(API\s+)?keys\s*$")
    if link.count():
        link.first.click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(re.compile("key", re.IGNORECASE))


def fits_the_screen(page, width: int) -> bool:
    return page.evaluate("document.documentElement.scrollWidth") <= width


def test_the_keys_page_lists_the_key_the_app_received(granted_page, provider, alice, screenshot):
    page = granted_page
    open_keys_page(page, provider)
    created = ApiKey.objects.get(user=alice, name="localhost")
    main = page.locator("main")
    expect(main).to_contain_text("laptop")
    expect(main).to_contain_text("localhost")
    expect(main).to_contain_text(created.prefix)
    assert created.plaintext() not in page.content()
    screenshot(page, "keys")

    page.set_viewport_size(PHONE)
    screenshot(page, "keys-phone")
    assert fits_the_screen(page, PHONE["width"]), "the keys page scrolls sideways on a phone"


def test_the_connected_apps_page_lists_the_app(granted_page, provider, screenshot):
    page = granted_page
    page.goto(provider + "/")
    link = nav_link(page, r"(connected|authori[sz]ed)\s+apps")
    expect(link.first).to_be_visible()
    link.first.click()
    expect(page.locator("main")).to_contain_text("localhost")
    screenshot(page, "connected-apps")

    page.set_viewport_size(PHONE)
    screenshot(page, "connected-apps-phone")
    assert fits_the_screen(page, PHONE["width"]), "the connected-apps page scrolls sideways on a phone"
