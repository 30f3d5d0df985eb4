"""The device flow's verification page in Chromium, and an app that names itself, end to end.

A device (played over HTTP beside the browser) asks for a code; the person
signs in and types it, or follows verification_uri_complete; Allow hands the
device the key on its next poll, Deny tells it access_denied. Then a CLI
calling itself "findall-cli" signs in with a loopback redirect to a callback
server this test runs.
"""

import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, HTTPServer
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from playwright.sync_api import expect

from oauthprovider.models import Grant
from tests.browser.flow import (
    HTTP_TIMEOUT,
    api_me,
    consent_form,
    decide,
    decide_for_the_device,
    device_error,
    device_poll,
    device_start,
    key_option,
    log_in,
    page_errors,
)
from tests.conftest import new_pkce_pair

pytestmark = pytest.mark.browser


@pytest.fixture(autouse=True)
def quick_polls(settings) -> None:
    """A 1 s interval: the device's polls here are never too soon (the server reads settings per request)."""
    settings.OAUTH_DEVICE_POLL_INTERVAL_SECONDS = 1


def expect_the_device_consent_page(page, started: dict, name: str) -> None:
    expect(page.get_by_test_id("device-notice")).to_be_visible()
    expect(page.get_by_test_id("user-code")).to_have_text(started["user_code"])
    expect(page.get_by_test_id("client-self-name")).to_have_text(name)
    expect(page.locator("h1")).to_contain_text(f"A device that calls itself “{name}”")
    expect(key_option(page, "new")).to_be_checked()


def test_a_signed_in_person_types_the_code_in_lower_case_without_the_dash(page, provider, alice, screenshot):
    started = device_start(provider)
    assert device_error(device_poll(provider, started)) == "authorization_pending"

    page.goto(started["verification_uri"])
    expect(page).to_have_url(re.compile(re.escape(provider) + r"/accounts/login/\?next=/getKeys/device$"))
    log_in(page, alice)
    expect(page).to_have_url(f"{provider}/getKeys/device")
    code_field = page.get_by_label("Code")
    expect(code_field).to_be_focused()
    screenshot(page, "device-entry")

    code_field.fill("aeio-uaei")  # vowels: never a user code
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_test_id("device-error")).to_contain_text("not valid")
    expect(code_field).to_have_value("aeio-uaei")
    screenshot(page, "device-entry-wrong-code")  # answered 400: the one console error expected

    errors = page_errors(page)
    code_field.fill(started["user_code"].lower().replace("-", ""))
    page.get_by_role("button", name="Continue").click()
    expect_the_device_consent_page(page, started, "localhost")
    screenshot(page, "device-consent")
    assert device_error(device_poll(provider, started)) == "authorization_pending"

    decide_for_the_device(page, "allow")
    expect(page.get_by_test_id("device-result")).to_contain_text("gets its key")
    screenshot(page, "device-allowed")

    answer = device_poll(provider, started)
    assert answer.status_code == 200, answer.text
    key = answer.json()["access_token"]
    me = api_me(provider, key)
    assert me["user"]["username"] == "alice"
    assert key not in page.content()
    assert device_error(device_poll(provider, started)) == "invalid_grant", "the key is handed out once"
    assert errors == []


def test_an_anonymous_person_follows_the_complete_link_signs_in_and_allows(page, provider, alice, screenshot):
    started = device_start(provider, client_id="findall-cli")
    requests_sent = []
    page.on("request", lambda r: r.url.startswith(provider) and requests_sent.append(r))

    page.goto(started["verification_uri_complete"])
    expect(page).to_have_url(re.compile(re.escape(provider) + r"/accounts/login/\?next=/getKeys/device%3Fuser_code%3D"))
    screenshot(page, "device-login")
    log_in(page, alice)

    expect(page).to_have_url(started["verification_uri_complete"])
    expect_the_device_consent_page(page, started, "findall-cli")
    expect(consent_form(page)).to_contain_text("Create a new key for findall-cli")
    screenshot(page, "device-consent-from-link")
    decide_for_the_device(page, "allow")

    answer = device_poll(provider, started, client_id="findall-cli")
    assert answer.status_code == 200, answer.text
    assert answer.json()["token_type"] == "Bearer"
    assert api_me(provider, answer.json()["access_token"])["user"]["username"] == "alice"
    assert Grant.objects.get(user=alice).client_id == "unverified:findall-cli"
    consent_post = next(r for r in requests_sent if r.method == "POST" and r.url == f"{provider}/getKeys/device")
    assert "referer" not in consent_post.all_headers(), "the page with the code in its URL sends no Referer"


def test_deny_tells_the_device_access_denied_and_the_code_is_dead(page, provider, alice, screenshot):
    started = device_start(provider)
    page.goto(started["verification_uri_complete"])
    log_in(page, alice)
    expect_the_device_consent_page(page, started, "localhost")

    decide_for_the_device(page, "deny")
    expect(page.get_by_test_id("device-result")).to_have_text("Denied")
    screenshot(page, "device-denied")

    assert device_error(device_poll(provider, started)) == "access_denied"
    page.goto(started["verification_uri_complete"])
    expect(page.get_by_test_id("device-error")).to_contain_text("not valid, has expired or was already used")
    assert not Grant.objects.filter(user=alice).exists()


# --- An app on this computer that names itself ------------------------------------------------


@dataclass
class LoopbackApp:
    """A CLI's one-shot callback server: what arrives on /callback."""

    server: HTTPServer
    answers: list[dict[str, str]] = field(default_factory=list)
    arrived: threading.Event = field(default_factory=threading.Event)

    @property
    def redirect_uri(self) -> str:
        return f"http://localhost:{self.server.server_address[1]}/callback"


@pytest.fixture
def loopback_app() -> Iterator[LoopbackApp]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            url = urlsplit(self.path)
            if url.path != "/callback":
                self.send_error(404)
                return
            app.answers.append({name: values[0] for name, values in parse_qs(url.query).items()})
            app.arrived.set()
            body = b"<!doctype html><title>findall-cli</title><p>Signed in. Return to your terminal.</p>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args) -> None:
            pass

    app = LoopbackApp(server=HTTPServer(("127.0.0.1", 0), Handler))
    thread = threading.Thread(target=app.server.serve_forever, daemon=True, name="findall-cli-callback")
    thread.start()
    yield app
    app.server.shutdown()
    app.server.server_close()
    thread.join(5)


def test_a_cli_calling_itself_findall_cli_signs_in_through_its_loopback_callback(
    page, provider, alice, loopback_app, screenshot
):
    pkce = new_pkce_pair()
    params = {
        "client_id": "findall-cli",
        "redirect_uri": loopback_app.redirect_uri,
        "response_type": "code",
        "scope": "key:read",
        "code_challenge": pkce.challenge,
        "code_challenge_method": "S256",
        "state": "findall-state",
    }
    page.goto(f"{provider}/getKeys/authorize?{urlencode(params)}")
    log_in(page, alice)

    expect(page.locator("h1")).to_contain_text("An app on your computer that calls itself “findall-cli”")
    expect(page.get_by_test_id("client-self-name")).to_have_text("findall-cli")
    expect(page.get_by_test_id("loopback-notice")).to_contain_text("Keygrant cannot verify its name")
    expect(page.locator(".client-host")).to_have_count(0)  # never dressed as a website
    screenshot(page, "consent-findall-cli")
    decide(page, "allow")

    page.wait_for_url(loopback_app.redirect_uri + "?**")
    expect(page.locator("body")).to_contain_text("Return to your terminal")
    assert loopback_app.arrived.wait(5)
    [answer] = loopback_app.answers
    assert answer["state"] == "findall-state" and answer["iss"] == provider
    token = httpx.post(
        f"{provider}/getKeys/token",
        data={
            "grant_type": "authorization_code",
            "code": answer["code"],
            "client_id": "findall-cli",
            "redirect_uri": loopback_app.redirect_uri,
            "code_verifier": pkce.verifier,
        },
        timeout=HTTP_TIMEOUT,
    )
    assert token.status_code == 200, token.text
    me = api_me(provider, token.json()["access_token"])
    assert me["user"]["username"] == "alice"
    assert me["key"]["name"] == "findall-cli"
    assert Grant.objects.get(user=alice).client_id == "unverified:findall-cli"
