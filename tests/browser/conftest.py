"""End-to-end tests in headless Chromium (Playwright driving the system browser).

Two servers run beside the tests, on two origins, so that the browser really
crosses sites the way a deployed app does:

- the provider: this Django project in a thread (Django's LiveServerThread,
  as pytest-django's `live_server` starts it) on http://127.0.0.1:<port>,
  with OAUTH_ISSUER set to that URL;
- the example client (examples/browser-client), served by its own serve.py on
  127.0.0.1 and addressed as http://localhost:<port>.

The browser is the Debian `chromium` package (bin/install-chromium), never a
downloaded build. Without it these tests skip with the reason, except in CI
(CI=true), where they fail.
"""

import html
import importlib.util
import os
import re
import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from accounts.models import User
from tests.conftest import make_user, new_pkce_pair

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
# Without the background-networking switches Chromium keeps calling home,
# which a closed network (CI) answers slowly or not at all.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TIMEOUT_MS = 10_000


def pytest_configure(config: pytest.Config) -> None:
    # Until pyproject.toml declares it (--strict-markers refuses unknown marks).
    config.addinivalue_line("markers", "browser: end-to-end tests in headless Chromium (tests/browser)")


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    # Lets the page fixture save a screenshot when the test itself failed.
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _unavailable(reason: str) -> None:
    message = f"{reason} The browser tests need it: run bin/install-chromium."
    if _in_ci():
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


# --- Artifacts -------------------------------------------------------------------


@pytest.fixture(scope="session")
def screenshot_dir(pytestconfig: pytest.Config) -> Path:
    path = pytestconfig.rootpath / "artifacts" / "screenshots"
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture
def screenshot(screenshot_dir):
    """screenshot(page, "consent") saves artifacts/screenshots/consent.png (the whole page)."""

    def save(page, name: str) -> Path:
        path = screenshot_dir / f"{name}.png"
        page.screenshot(path=path, full_page=True)
        return path

    return save


# --- The two servers -------------------------------------------------------------


@pytest.fixture(scope="session")
def _provider_server(django_db_setup, django_db_blocker):
    from pytest_django.live_server_helper import LiveServer

    with django_db_blocker.unblock():
        server = LiveServer("127.0.0.1:0")
    yield server
    server.stop()


@pytest.fixture
def provider(_provider_server, transactional_db, settings) -> str:
    """The provider's base URL, which is also its issuer (the `iss` the app checks)."""
    url = _provider_server.url
    settings.OAUTH_ISSUER = url
    settings.ALLOWED_HOSTS = ["127.0.0.1"]
    return url


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


FRAME_TEST_PATH = "__tests__/frame.html"


def frame_test_page(src: str) -> bytes:
    return (
        "<!doctype html><title>A page on the app's origin that frames another page</title>"
        f'<iframe id="framed" src="{html.escape(src)}" width="800" height="600"'
        " onload=\"document.body.dataset.frameLoaded = 'yes'\"></iframe>"
    ).encode()


def _load_serve_module(path: Path):
    spec = importlib.util.spec_from_file_location("browser_client_serve", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def example_app(pytestconfig: pytest.Config) -> Iterator[ExampleApp]:
    directory = pytestconfig.rootpath / "examples" / "browser-client"
    serve = _load_serve_module(directory / "serve.py")

    class Handler(serve.Handler):
        # The example app, plus a framing test page. Served for real (not
        # through page.route) so that Chromium treats it as the loopback page
        # it is: a page the browser thinks public may not frame 127.0.0.1 at
        # all (Local Network Access), which would make the framing test pass
        # for the wrong reason.
        def do_GET(self) -> None:
            url = urlsplit(self.path)
            if url.path != "/" + FRAME_TEST_PATH:
                return super().do_GET()
            body = frame_test_page(parse_qs(url.query)["src"][0])
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = serve.make_server(port=0, directory=directory, quiet=True, handler=Handler)
    thread = threading.Thread(target=server.serve_forever, name="example-client", daemon=True)
    thread.start()
    yield ExampleApp(url=f"http://localhost:{server.server_address[1]}/", directory=directory)
    server.shutdown()
    server.server_close()


# --- The browser -----------------------------------------------------------------


@pytest.fixture(scope="module")
def browser(django_db_setup):
    """One Chromium per test module.

    Playwright's sync API keeps an asyncio loop running in this thread, so
    Django would take every ORM call of the test for one made from async
    code: DJANGO_ALLOW_ASYNC_UNSAFE lifts that check, only while the browser
    runs (the ORM calls still happen in this one thread, one at a time).
    """
    if not (shutil.which(CHROMIUM) or Path(CHROMIUM).is_file()):
        _unavailable(f"Chromium is not installed at {CHROMIUM}.")
    from playwright.sync_api import sync_playwright  # the [test] extra: bin/test installs it

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            yield browser
            browser.close()


@dataclass
class BrowserErrors:
    """What the page complained about: console errors and uncaught exceptions."""

    messages: list[str] = field(default_factory=list)


@pytest.fixture
def new_page(browser, request, screenshot_dir):
    """new_page(**context_options): a page in a fresh browser context (own cookies and storage)."""
    contexts = []

    def make(**options):
        context = browser.new_context(**options)
        context.set_default_timeout(TIMEOUT_MS)
        # Chromium asks every site for /favicon.ico; answering here keeps those
        # stray requests away from the provider while the test drives it.
        context.route("**/favicon.ico", lambda route: route.fulfill(status=404, body=""))
        contexts.append(context)
        page = context.new_page()
        page.errors = BrowserErrors()
        page.on("console", lambda msg: msg.type == "error" and page.errors.messages.append(msg.text))
        page.on("pageerror", lambda exc: page.errors.messages.append(str(exc)))
        return page

    yield make
    report = getattr(request.node, "report_call", None)
    for number, context in enumerate(contexts):
        if report is not None and report.failed:
            failures = screenshot_dir / "failures"
            failures.mkdir(exist_ok=True)
            for index, page in enumerate(context.pages):
                name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)
                page.screenshot(path=failures / f"{name}-{number}-{index}.png", full_page=True)
        context.close()


@pytest.fixture
def page(new_page):
    return new_page(viewport={"width": 1024, "height": 800})


# --- People and the flow -----------------------------------------------------------


@pytest.fixture
def alice(transactional_db) -> User:
    """Alice, committed to the database so that the provider's thread sees her."""
    user = make_user("alice")
    user.first_name, user.last_name = "Alice", "Liddell"
    user.save()
    return user


def _posting(page):
    """Wait for the form POST the next action sends from this page."""
    return page.expect_response(lambda r: r.request.method == "POST" and r.frame == page.main_frame)


def _refused(page, response) -> str:
    heading = page.locator("h1").first.inner_text() if page.locator("h1").count() else ""
    return f"{response.request.url} answered HTTP {response.status}: {heading!r}"


def log_in(page, user: User) -> None:
    """Fill in the provider's login form (the page the flow was sent to) and send it."""
    page.locator("input[name=username]").fill(user.get_username())
    page.locator("input[name=password]").fill(f"{user.get_username()}-password")
    with _posting(page) as posted:
        page.locator("form:has(input[name=password]) [type=submit]").click()
    response = posted.value
    assert response.status in (302, 303), "the login was refused: " + _refused(page, response)


def consent_form(page):
    return page.locator("form:has(button[name=decision])")


def key_option(page, value: str):
    return page.locator(f"input[type=radio][name=key][value='{value}']")


def decide(page, decision: str) -> None:
    """Press Allow or Deny; the provider must answer with a redirect to the app."""
    with _posting(page) as posted:
        page.locator(f"button[name=decision][value={decision}]").click()
    response = posted.value
    assert response.status in (302, 303), f"{decision} was refused: " + _refused(page, response)


def start_at_the_app(page, app: ExampleApp, provider: str) -> None:
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
