"""The flow as a person walks it in Chromium: the example app, the login form, Allow or Deny.

Plain functions on a Playwright page, imported by the test modules; the
fixtures (servers, browser, people) live in conftest.py. A device of the
device flow is played over HTTP (httpx), beside the browser.
"""

import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

import httpx
from playwright.sync_api import Locator, Page, Response, expect

from accounts.models import User
from tests.conftest import new_pkce_pair

FRAME_TEST_PATH = "__tests__/frame.html"
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
HTTP_TIMEOUT = httpx.Timeout(10.0)


@dataclass
class ExampleApp:
    """The example client as the browser sees it: http://localhost:<port>/."""

    url: str
    directory: Path

    @property
    def origin(self) -> str:
        return self.url.rstrip("/")

    @property
    def callback_url(self) -> str:
        return self.url + "callback.html"

    def start_url(self, provider: str) -> str:
        return f"{self.url}?{urlencode({'provider': provider})}"

    def frame_test_url(self, src: str) -> str:
        """A page on the app's origin whose only content is an iframe of `src`."""
        return f"{self.url}{FRAME_TEST_PATH}?{urlencode({'src': src})}"


def start_at_the_app(page: Page, app: ExampleApp, provider: str) -> None:
    """Open the example app and press its button: the browser goes to the provider."""
    page.goto(app.start_url(provider))
    page.get_by_role("button", name="Connect with Keygrant").click()
    page.wait_for_url(re.compile("^" + re.escape(provider) + "/"))


def authorize_url(provider: str, app: ExampleApp, *, state: str = "state-from-the-test") -> str:
    """An authorization request as the example app makes it, built without JavaScript."""
    params = {
        "client_id": "localhost",
        "redirect_uri": app.callback_url,
        "response_type": "code",
        "scope": "key:read",
        "code_challenge": new_pkce_pair().challenge,
        "code_challenge_method": "S256",
        "state": state,
    }
    return f"{provider}/getKeys/authorize?{urlencode(params)}"


def log_in(page: Page, user: User) -> None:
    """Fill in the provider's login form (the page the flow was sent to) and send it."""
    page.locator("input[name=username]").fill(user.get_username())
    page.locator("input[name=password]").fill(f"{user.get_username()}-password")
    with _posting(page) as posted:
        page.locator("form:has(input[name=password]) [type=submit]").click()
    response = posted.value
    assert response.status in (302, 303), "the login was refused: " + _refused(page, response)


def consent_form(page: Page) -> Locator:
    return page.locator("form:has(button[name=decision])")


def key_option(page: Page, value: str) -> Locator:
    """The consent form's radio button for a key: "new", or an existing key's id."""
    return page.locator(f"input[type=radio][name=key][value='{value}']")


def decide(page: Page, decision: str) -> None:
    """Press Allow or Deny; the provider must answer with a redirect to the app."""
    with _posting(page) as posted:
        page.locator(f"button[name=decision][value={decision}]").click()
    response = posted.value
    assert response.status in (302, 303), f"{decision} was refused: " + _refused(page, response)


def decide_for_the_device(page: Page, decision: str) -> None:
    """Press Allow or Deny on a device's consent page; the provider answers with its result page."""
    with _posting(page) as posted:
        page.locator(f"button[name=decision][value={decision}]").click()
    response = posted.value
    assert response.status == 200, f"{decision} was refused: " + _refused(page, response)
    expect(page.get_by_test_id("device-result")).to_be_visible()


# --- The device, over HTTP -------------------------------------------------------------


def device_start(provider: str, *, client_id: str = "localhost") -> dict:
    """What a device shows its person: the codes and where to go (RFC 8628 section 3.2)."""
    response = httpx.post(
        f"{provider}/getKeys/device/code", data={"client_id": client_id, "scope": "key:read"}, timeout=HTTP_TIMEOUT
    )
    assert response.status_code == 200, response.text
    return response.json()


def device_poll(provider: str, started: dict, *, client_id: str = "localhost") -> httpx.Response:
    data = {"grant_type": DEVICE_GRANT, "device_code": started["device_code"], "client_id": client_id}
    return httpx.post(f"{provider}/getKeys/token", data=data, timeout=HTTP_TIMEOUT)


def device_error(response: httpx.Response) -> str:
    assert response.status_code == 400, response.text
    return response.json()["error"]


def api_me(provider: str, key: str) -> dict:
    response = httpx.get(f"{provider}/v1/me", headers={"x-api-key": key}, timeout=HTTP_TIMEOUT)
    assert response.status_code == 200, response.text
    return response.json()


def page_errors(page: Page) -> list[str]:
    """What the page complains about from now on: console errors and uncaught exceptions."""
    errors: list[str] = []
    page.on("console", lambda message: message.type == "error" and errors.append(message.text))
    page.on("pageerror", lambda error: errors.append(str(error)))
    return errors


def _posting(page: Page):
    """Wait for the form POST the next action sends from this page."""
    return page.expect_response(lambda r: r.request.method == "POST" and r.frame == page.main_frame)


def _refused(page: Page, response: Response) -> str:
    heading = page.locator("h1").first.inner_text() if page.locator("h1").count() else ""
    return f"{response.request.url} answered HTTP {response.status}: {heading!r}"
