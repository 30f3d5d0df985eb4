"""The reference provider's CLI, as written (tests/interop/reference_cli.py), signs in to Keygrant both ways.

Against the live server: the browser flow with the person delivering the
redirect to the CLI's own callback server, and the device flow with the CLI
polling in a thread while the person approves (or denies) on /getKeys/device.
"""

import queue
import threading
from urllib.parse import urlsplit

import httpx
import pytest

from oauthprovider.models import Grant
from tests.interop.browser import redirect_query
from tests.interop.reference_cli import ReferenceCli, SignInFailed

pytestmark = pytest.mark.interop

TIMEOUT = httpx.Timeout(10.0)
WAIT_SECONDS = 30


@pytest.fixture
def quick_polls(settings) -> None:
    """A 1 s polling interval, so a device test takes seconds (the live server reads settings per request)."""
    settings.OAUTH_DEVICE_POLL_INTERVAL_SECONDS = 1


def owner_of(keygrant: str, key: str) -> str:
    me = httpx.get(f"{keygrant}/v1/me", headers={"x-api-key": key}, timeout=TIMEOUT)
    assert me.status_code == 200, me.text
    return me.json()["user"]["username"]


class DeviceRun:
    """The CLI's device flow in a thread, as a terminal runs it while its person goes to a browser."""

    def __init__(self, cli: ReferenceCli) -> None:
        self.shown: queue.Queue[dict] = queue.Queue()
        self.key: str | None = None
        self.failure: SignInFailed | None = None
        self.thread = threading.Thread(target=self._run, args=(cli,), daemon=True, name="reference-cli-device")
        self.thread.start()

    def _run(self, cli: ReferenceCli) -> None:
        try:
            self.key = cli.device_login(show=self.shown.put)
        except SignInFailed as failure:
            self.failure = failure

    def screen(self) -> dict:
        """What the terminal shows: verification_uri, user_code, verification_uri_complete."""
        return self.shown.get(timeout=WAIT_SECONDS)

    def finish(self) -> None:
        self.thread.join(WAIT_SECONDS)
        assert not self.thread.is_alive(), "the CLI is still polling"


def test_the_reference_cli_signs_in_through_the_browser_without_state(keygrant, person):
    cli = ReferenceCli(keygrant)
    locations = []

    def the_person_at_the_browser(url: str) -> bool:
        location = person.approve(url)
        locations.append(location)
        assert httpx.get(location, timeout=TIMEOUT).status_code == 200  # the browser loads the callback
        return True

    key = cli.browser_login(open_url=the_person_at_the_browser)

    [location] = locations
    assert location.startswith("http://localhost:") and urlsplit(location).path == "/callback"
    answer = redirect_query(location)
    assert "state" not in answer, "no state was sent, none comes back"
    assert answer["iss"] == keygrant
    assert 'data-testid="client-self-name">localhost<' in person.consent_pages[-1]
    assert owner_of(keygrant, key) == "carol"
    grant = Grant.objects.get(user__username="carol")
    assert grant.client_id == "localhost"
    assert grant.resources == [], "the CLI's own origin is not served here, so it is no audience"


def test_the_reference_cli_gets_the_key_through_the_device_flow(keygrant, person, quick_polls):
    cli = ReferenceCli(keygrant)
    run = DeviceRun(cli)
    screen = run.screen()
    assert screen["verification_uri"] == f"{keygrant}/getKeys/device"
    assert screen["interval"] == 1 and screen["expires_in"] == 600

    # The person reads the code off the terminal and types it in.
    result = person.approve_device(user_code=screen["user_code"])
    run.finish()

    assert run.failure is None, run.failure
    assert "gets its key" in result
    assert run.key and owner_of(keygrant, run.key) == "carol"
    assert cli.heard[-1] == "access_token"
    assert set(cli.heard[:-1]) <= {"authorization_pending"}, cli.heard
    [(path, fields)] = [sent for sent in cli.sent if sent[0] == "/getKeys/device/code"]
    assert fields == {"client_id": "localhost", "scope": "key:read"}
    assert Grant.objects.get(user__username="carol").client_id == "localhost"


def test_the_reference_cli_hears_access_denied_when_the_person_denies(keygrant, person, quick_polls):
    cli = ReferenceCli(keygrant)
    run = DeviceRun(cli)

    person.deny_device(complete_uri=run.screen()["verification_uri_complete"])
    run.finish()

    assert run.key is None
    assert run.failure is not None and run.failure.error == "access_denied"
