"""End-to-end tests in headless Chromium: pytest-playwright's fixtures, the system browser.

Two servers run beside the tests, on two origins, so that the browser really
crosses sites the way a deployed app does:

- the provider: this Django project in a thread (Django's LiveServerThread,
  as pytest-django's `live_server` starts it) on http://127.0.0.1:<port>,
  with OAUTH_ISSUER set to that URL;
- the example client (examples/browser-client), served by its own serve.py on
  127.0.0.1 and addressed as http://localhost:<port>.

The browser is the Debian `chromium` package (bin/install-chromium), never a
downloaded build. Without it these tests skip with the reason, except in CI
(CI=true), where they fail. pytest-playwright's own fixtures (`page`,
`context`, `new_context`) drive it, and its options in pyproject.toml keep a
screenshot of every open page when a test fails. The flow helpers are in flow.py.
"""

import html
import importlib.util
import os
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import Browser, Playwright, sync_playwright

from accounts.models import User
from tests.browser.flow import FRAME_TEST_PATH, ExampleApp
from tests.conftest import make_user

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


# --- The browser (pytest-playwright) -----------------------------------------------


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict) -> dict:
    if not (shutil.which(CHROMIUM) or Path(CHROMIUM).is_file()):
        message = f"Chromium is not installed at {CHROMIUM}. The browser tests need it: run bin/install-chromium."
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return {**browser_type_launch_args, "executable_path": CHROMIUM, "args": CHROMIUM_ARGS}


# pytest-playwright starts Playwright for the whole session, and while it runs
# this thread has an asyncio loop marked as running: every later test outside
# this folder would find asyncio.run() and the ORM refused. So Playwright, the
# browser and the context defaults (the plugin's are built on `playwright`) live
# as long as this package; the database is set up before the loop starts.


@pytest.fixture(scope="package")
def playwright(django_db_setup) -> Iterator[Playwright]:
    with sync_playwright() as playwright:
        yield playwright


@pytest.fixture(scope="package")
def browser(browser_type_launch_args: dict, playwright: Playwright) -> Iterator[Browser]:
    browser = playwright.chromium.launch(**browser_type_launch_args)
    yield browser
    browser.close()


@pytest.fixture(scope="package")
def browser_context_args() -> dict:
    """Options of every context. A test changes them for its `page` with
    @pytest.mark.browser_context_args(**options); new_context(**options) may only
    add options that are not set here (the plugin passes both as keywords)."""
    return {"viewport": {"width": 1024, "height": 800}}


@pytest.fixture
def new_context(new_context):
    """The plugin's new_context(**options), with this project's timeout; `context` and `page` use it."""

    def make(**options):
        context = new_context(**options)
        context.set_default_timeout(TIMEOUT_MS)
        # Chromium asks every site for /favicon.ico; answering here keeps those
        # stray requests away from the provider while the test drives it.
        context.route("**/favicon.ico", lambda route: route.fulfill(status=404, body=""))
        return context

    return make


@pytest.fixture(autouse=True)
def _orm_beside_playwright() -> Iterator[None]:
    """Playwright's sync API marks an asyncio loop as running in this thread, so
    Django would take every ORM call of the test for one made from async code:
    DJANGO_ALLOW_ASYNC_UNSAFE lifts that check during each browser test, setup
    and teardown included (the ORM calls still happen in this one thread, one at
    a time)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        yield


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


# --- People ------------------------------------------------------------------------


@pytest.fixture
def alice(transactional_db) -> User:
    """Alice, committed to the database so that the provider's thread sees her."""
    user = make_user("alice")
    user.first_name, user.last_name = "Alice", "Liddell"
    user.save()
    return user
