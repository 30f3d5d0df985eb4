"""The consent page itself in Chromium: framing, no JavaScript, a phone screen."""

from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import expect

from accounts.audit import SYSTEM
from accounts.services import key_create
from tests.browser.flow import authorize_url, consent_form, decide, key_option, log_in

pytestmark = pytest.mark.browser

FRAMING_HEADERS = ("content-security-policy", "x-frame-options")
PHONE = {"width": 375, "height": 740}


def framed_document_text(page) -> str:
    """What the iframe shows: its text, or '' for Chromium's blocked-frame error page."""
    page.wait_for_function("document.body.dataset.frameLoaded === 'yes'")
    framed = page.locator("#framed").element_handle().content_frame()
    if framed.url.startswith("chrome-error://"):
        return ""
    return framed.locator("body").inner_text()


@pytest.fixture
def signed_in_page(page, provider, example_app, alice):
    """Alice, signed in at the provider, looking at a consent page."""
    page.goto(authorize_url(provider, example_app))
    log_in(page, alice)
    expect(consent_form(page)).to_be_visible()
    return page


def test_the_consent_page_cannot_be_framed(signed_in_page, provider, example_app, screenshot):
    page = signed_in_page
    consent_url = page.url
    failures = []
    page.on("requestfailed", lambda r: failures.append((r.url, r.resource_type, r.failure)))

    with page.expect_response(consent_url) as framed_response:
        page.goto(example_app.frame_test_url(consent_url))
    assert "frame-ancestors 'none'" in framed_response.value.headers["content-security-policy"]
    assert framed_document_text(page) == "", "the framed provider page rendered"
    expect(page.frame_locator("#framed").locator("form")).to_have_count(0)
    # The framed request is blocked by the page's own headers, not by anything
    # else (Chromium's Local Network Access checks, for one, fail with another
    # error). Inside the frame the session cookie (SameSite=Lax) is not sent, so
    # the blocked document may be the login page the consent URL leads to.
    # Requests aborted by leaving the previous page do not count.
    blocked = [failure for url, kind, failure in failures if kind == "document" and failure != "net::ERR_ABORTED"]
    assert blocked == ["net::ERR_BLOCKED_BY_RESPONSE"], failures
    screenshot(page, "consent-framed")


def test_the_framing_check_sees_a_page_that_can_be_framed(signed_in_page, provider, example_app):
    """The check above is not vacuous: without the anti-framing headers, the frame renders."""
    page = signed_in_page

    def strip_framing_headers(route):
        response = route.fetch(max_redirects=0)
        headers = {k: v for k, v in response.headers.items() if k.lower() not in FRAMING_HEADERS}
        route.fulfill(response=response, headers=headers)

    page.route(f"{provider}/**", strip_framing_headers)
    page.goto(example_app.frame_test_url(page.url))
    text = framed_document_text(page)
    assert "Keygrant" in text and ("Allow" in text or "Sign in" in text)


@pytest.mark.browser_context_args(java_script_enabled=False)
def test_the_consent_page_works_without_javascript(page, provider, example_app, alice, screenshot):
    page.set_content("<script>document.title = 'scripts run'</script>")
    assert page.title() == "", "JavaScript is on in this browser context"
    page.goto(authorize_url(provider, example_app, state="no-js-state"))
    log_in(page, alice)
    expect(page.get_by_test_id("client-host")).to_have_text("localhost")
    expect(key_option(page, "new")).to_be_checked()
    decide(page, "allow")

    page.wait_for_url(example_app.callback_url + "?**")
    query = parse_qs(urlsplit(page.url).query)
    assert set(query) == {"code", "state", "iss"}
    assert query["state"] == ["no-js-state"]
    assert query["iss"] == [provider]
    assert len(query["code"][0]) >= 43


@pytest.mark.parametrize("with_keys", [False, True], ids=["no-keys", "with-keys"])
@pytest.mark.browser_context_args(viewport=PHONE, is_mobile=True, has_touch=True, device_scale_factor=2)
def test_the_consent_page_fits_a_phone_screen(page, provider, example_app, alice, screenshot, with_keys):
    if with_keys:
        key_create(user=alice, name="laptop", context=SYSTEM)
        key_create(user=alice, name="a rather long key name for the build server in the basement", context=SYSTEM)
    assert page.viewport_size == PHONE
    page.goto(authorize_url(provider, example_app))
    if with_keys:
        screenshot(page, "login-phone")
    log_in(page, alice)
    expect(consent_form(page)).to_be_visible()
    if with_keys:
        screenshot(page, "consent-phone")
    else:
        screenshot(page, "consent-phone-no-keys")

    for decision in ("allow", "deny"):
        button = page.locator(f"button[name=decision][value={decision}]")
        expect(button).to_be_visible()
        box = button.bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], f"{decision} sticks out: {box}"
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
