"""Passkeys end to end in Chromium, with a virtual authenticator (Chrome DevTools Protocol, WebAuthn domain).

The provider is addressed as http://localhost:<port> here, with OAUTH_ISSUER
set to that: browsers refuse an IP address as a WebAuthn relying-party id,
so http://127.0.0.1 (what the other browser tests use) cannot have passkeys.
`localhost` is a secure context, as WebAuthn requires.
"""

import re
import time
from urllib.parse import parse_qs, urlsplit

import pytest
from django.contrib.sessions.models import Session
from playwright.sync_api import Page, expect

from accounts.models import AuditEvent, Passkey
from accounts.second_factor import TOTP_PERIOD, totp_code_at
from tests.browser.flow import authorize_url, consent_form, decide, log_in, page_errors

pytestmark = pytest.mark.browser


@pytest.fixture
def passkey_provider(_provider_server, transactional_db, settings) -> str:
    """The provider under the name `localhost`, which is also its issuer and so the relying party."""
    url = f"http://localhost:{_provider_server.thread.port}"
    settings.OAUTH_ISSUER = url
    settings.ALLOWED_HOSTS = ["localhost"]
    return url


def virtual_authenticator(page: Page) -> tuple[object, str]:
    """A platform authenticator that keeps passkeys and verifies its user (a fingerprint, say) at once."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("WebAuthn.enable")
    added = cdp.send(
        "WebAuthn.addVirtualAuthenticator",
        {
            "options": {
                "protocol": "ctap2",
                "transport": "internal",
                "hasResidentKey": True,
                "hasUserVerification": True,
                "isUserVerified": True,
                "automaticPresenceSimulation": True,
            }
        },
    )
    return cdp, added["authenticatorId"]


def add_passkey(page: Page, provider: str, name: str) -> None:
    page.goto(f"{provider}/accounts/security/")
    page.get_by_label("Name").fill(name)
    page.get_by_role("button", name="Add a passkey").click()
    expect(page.get_by_role("status").first).to_contain_text(f"Added the passkey “{name}”")


def sign_out(page: Page) -> None:
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(re.compile(r"/accounts/login/"))


def test_a_person_adds_a_passkey_and_signs_in_with_it_alone_during_an_authorization_request(
    page, passkey_provider, example_app, alice, screenshot
):
    errors = page_errors(page)
    cdp, authenticator = virtual_authenticator(page)
    page.goto(f"{passkey_provider}/accounts/login/")
    log_in(page, alice)
    add_passkey(page, passkey_provider, "laptop")
    codes = page.get_by_test_id("recovery-codes")
    expect(codes.locator("li")).to_have_count(10)  # the first factor comes with recovery codes, shown once
    screenshot(page, "passkey-recovery-codes")
    page.get_by_role("link", name="I saved them, continue").click()
    stored = Passkey.objects.get(user=alice)
    credentials = cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator})["credentials"]
    assert credentials[0]["isResidentCredential"]  # discoverable: it can sign in without a username
    sign_out(page)

    # An app asks; the person is sent to sign in and uses the passkey, no username, no password.
    request_url = authorize_url(passkey_provider, example_app)
    page.goto(request_url)
    page.wait_for_url(re.compile(r"/accounts/login/\?next="))
    screenshot(page, "login-with-passkey")
    page.get_by_role("button", name="Sign in with a passkey").click()
    expect(consent_form(page)).to_be_visible()
    assert page.url == request_url  # the same consent page the request led to
    with page.expect_request(lambda r: r.url.startswith(example_app.callback_url)) as sent_back:
        decide(page, "allow")
    assert "code" in parse_qs(urlsplit(sent_back.value.url).query)

    stored.refresh_from_db()
    assert stored.last_used_at is not None and stored.sign_count >= 1
    assert AuditEvent.objects.filter(kind=AuditEvent.Kind.PASSKEY_SIGNIN, subject=alice).exists()
    assert errors == []


def test_a_passkey_is_the_second_step_after_the_password_and_a_session_id_is_new(
    page, passkey_provider, example_app, alice
):
    virtual_authenticator(page)
    page.goto(f"{passkey_provider}/accounts/login/")
    log_in(page, alice)
    add_passkey(page, passkey_provider, "phone")
    page.get_by_role("link", name="I saved them, continue").click()
    sign_out(page)

    request_url = authorize_url(passkey_provider, example_app)
    page.goto(request_url)
    log_in(page, alice)  # the password...
    page.wait_for_url(re.compile(r"/accounts/login/verify/"))
    expect(page.get_by_role("heading", name="Confirm it's you")).to_be_visible()
    before = {s.session_key for s in Session.objects.all()}
    page.get_by_role("button", name="Use your passkey").click()  # ...then the passkey
    expect(consent_form(page)).to_be_visible()
    assert page.url == request_url
    cookie = next(c for c in page.context.cookies() if c["name"] == "sessionid")
    assert cookie["value"] not in before


def test_a_passkey_of_another_site_name_is_refused(page, passkey_provider, alice, settings):
    """The relying party is the issuer: a passkey made under one name does not sign in under another."""
    virtual_authenticator(page)
    page.goto(f"{passkey_provider}/accounts/login/")
    log_in(page, alice)
    add_passkey(page, passkey_provider, "laptop")
    page.get_by_role("link", name="I saved them, continue").click()
    sign_out(page)
    # The operator moves the service to another name; the browser still shows it as localhost.
    settings.OAUTH_ISSUER = passkey_provider.replace("localhost", "keys.localhost")
    page.get_by_role("button", name="Sign in with a passkey").click()
    expect(page.locator(".passkey-status")).to_contain_text("could not be used")


def test_without_javascript_the_login_page_has_no_passkey_button_and_the_password_works(
    browser, new_context, passkey_provider, alice
):
    context = new_context(java_script_enabled=False)
    page = context.new_page()
    page.goto(f"{passkey_provider}/accounts/login/")
    expect(page.get_by_role("button", name="Sign in with a passkey")).to_be_hidden()
    log_in(page, alice)
    page.wait_for_url(re.compile(r"/keys/"))


def test_an_authenticator_app_is_set_up_and_used_without_javascript(
    new_context, provider, example_app, alice, screenshot
):
    """Authenticator codes need no JavaScript anywhere: set-up (QR code or typed secret), the second step."""
    page = new_context(java_script_enabled=False).new_page()
    page.goto(f"{provider}/accounts/login/")
    log_in(page, alice)
    page.goto(f"{provider}/accounts/security/")
    page.get_by_role("link", name="Set up an authenticator app").click()
    expect(page.get_by_test_id("totp-qr").locator("svg")).to_be_visible()
    screenshot(page, "totp-setup")
    secret = page.get_by_test_id("totp-secret").inner_text().replace(" ", "")
    page.get_by_label("Code from your authenticator app").fill(totp_code_at(secret, time.time()))
    page.get_by_role("button", name="Turn on").click()
    expect(page.get_by_test_id("recovery-codes").locator("li")).to_have_count(10)
    page.get_by_role("link", name="I saved them, continue").click()
    expect(page.get_by_text("On", exact=True)).to_be_visible()
    screenshot(page, "security-page")
    sign_out(page)

    request_url = authorize_url(provider, example_app)
    page.goto(request_url)
    log_in(page, alice)
    page.wait_for_url(re.compile(r"/accounts/login/verify/"))
    expect(page.get_by_role("button", name="Use your passkey")).to_have_count(0)
    screenshot(page, "second-step")
    page.get_by_label("Code from your authenticator app, or a recovery code").fill(
        totp_code_at(secret, time.time() + TOTP_PERIOD)
    )
    page.get_by_role("button", name="Verify").click()
    expect(consent_form(page)).to_be_visible()
    assert page.url == request_url
