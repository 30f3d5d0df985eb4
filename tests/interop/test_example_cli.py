"""examples/cli/keygrant_cli.py signs in both ways against the live server, and explains every failure.

The live tests run the example as people do, a separate process, started
with `python -I -S`: without site-packages, so it proves to need nothing
beyond the standard library. The person is tests/interop/browser.py's;
what the program prints on stderr (the address, the codes) is what they
read. The polling rules are then checked against scripted answers.
"""

import importlib.util
import json
import os
import queue
import re
import stat
import subprocess
import sys
import threading
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from oauthprovider.models import Grant
from tests.interop.browser import redirect_query

pytestmark = pytest.mark.interop

CLI = Path(__file__).resolve().parents[2] / "examples" / "cli" / "keygrant_cli.py"
TIMEOUT = httpx.Timeout(10.0)
WAIT_SECONDS = 30
# What the program reads to guess whether a browser can be shown; each test sets its own.
HEADLESS_SIGNS = ("BROWSER", "CI", "DISPLAY", "WAYLAND_DISPLAY", "SSH_CONNECTION", "SSH_CLIENT", "SSH_TTY")


class CliProcess:
    """One run of the example CLI; its stderr is read line by line as it comes."""

    def __init__(self, *args: str, env: dict[str, str]) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-I", "-S", str(CLI), *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.stderr: list[str] = []
        self.stdout = ""
        self._readers = [
            threading.Thread(target=self._read_stderr, daemon=True),
            threading.Thread(target=self._read_stdout, daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    def _read_stderr(self) -> None:
        for line in self.process.stderr:
            self.stderr.append(line)
            self.lines.put(line)

    def _read_stdout(self) -> None:
        self.stdout = self.process.stdout.read()

    def wait_for(self, pattern: str) -> re.Match:
        """The first line of stderr from now on that matches `pattern`."""
        while True:
            try:
                line = self.lines.get(timeout=WAIT_SECONDS)
            except queue.Empty:
                raise AssertionError(f"the CLI never printed {pattern!r}; stderr: {''.join(self.stderr)}") from None
            if match := re.search(pattern, line):
                return match

    def finish(self) -> int:
        code = self.process.wait(timeout=WAIT_SECONDS)
        for reader in self._readers:
            reader.join(5)
        return code

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(5)


@pytest.fixture
def run_cli(tmp_path, settings):
    """run_cli(*args, **env): the CLI with its key file in tmp_path and no sign of a browser unless given."""
    settings.OAUTH_DEVICE_POLL_INTERVAL_SECONDS = 1  # seconds per test (the live server reads it per request)
    started: list[CliProcess] = []
    base_env = {name: value for name, value in os.environ.items() if name not in HEADLESS_SIGNS}

    def run(*args: str, **env: str) -> CliProcess:
        process = CliProcess(*args, "--key-file", str(tmp_path / "key.json"), env={**base_env, **env})
        started.append(process)
        return process

    yield run
    for process in started:
        process.stop()


def api_owner(keygrant: str, key: str) -> httpx.Response:
    return httpx.get(f"{keygrant}/v1/me", headers={"x-api-key": key}, timeout=TIMEOUT)


# --- Against the live server ------------------------------------------------------------------


def test_the_device_flow_signs_in_and_whoami_prints_the_owner(keygrant, person, run_cli, tmp_path):
    login = run_cli("login", "--device", "--issuer", keygrant)
    complete_uri = login.wait_for(r"or open (\S+)")[1]
    user_code = parse_qs(urlsplit(complete_uri).query)["user_code"][0]
    assert any(user_code in line for line in login.stderr), "the code itself is shown, for typing"

    result = person.approve_device(complete_uri=complete_uri)

    assert login.finish() == 0, login.stderr
    assert "keygrant-example-cli" in result
    assert login.stdout.startswith("Signed in as carol (Carol Interop), key kg_")
    key_file = tmp_path / "key.json"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    stored = json.loads(key_file.read_text())
    assert stored["issuer"] == keygrant
    assert api_owner(keygrant, stored["access_token"]).json()["user"]["username"] == "carol"
    assert stored["access_token"] not in login.stdout + "".join(login.stderr), "the key is never printed"

    whoami = run_cli("whoami")
    assert whoami.finish() == 0
    assert whoami.stdout.startswith("carol (Carol Interop), key kg_")


def test_where_a_browser_opens_it_names_itself_and_checks_state(keygrant, person, run_cli):
    # BROWSER says how to open one (here the `true` command, which opens nothing); the person reads stderr.
    login = run_cli("login", "--issuer", keygrant, BROWSER="true")
    authorize_url = login.wait_for(r"^\s+(http\S+/getKeys/authorize\?\S+)$")[1]
    request = redirect_query(authorize_url)
    assert request["client_id"] == "keygrant-example-cli"
    assert request["redirect_uri"].startswith("http://127.0.0.1:")
    assert request["code_challenge_method"] == "S256" and request["state"]

    location = person.approve(authorize_url)
    consent = person.consent_pages[-1]
    assert "An app on your computer that calls itself" in consent
    assert 'data-testid="client-self-name">keygrant-example-cli<' in consent
    forged = location.replace(f"state={request['state']}", "state=someone-elses")
    assert httpx.get(forged, timeout=TIMEOUT).status_code == 400, "an answer with another state is ignored"
    assert httpx.get(location, timeout=TIMEOUT).status_code == 200

    assert login.finish() == 0, login.stderr
    assert login.stdout.startswith("Signed in as carol (Carol Interop)")
    assert Grant.objects.get(user__username="carol").client_id == "unverified:keygrant-example-cli"


def test_the_browser_flow_refuses_an_answer_from_another_issuer(keygrant, run_cli):
    login = run_cli("login", "--browser", "--issuer", keygrant, BROWSER="true")
    request = redirect_query(login.wait_for(r"^\s+(http\S+/getKeys/authorize\?\S+)$")[1])

    # A mix-up attack (RFC 9207): the right state, a code from another provider.
    answer = f"{request['redirect_uri']}?code=from-elsewhere&state={request['state']}&iss=https%3A%2F%2Fother.example"
    assert httpx.get(answer, timeout=TIMEOUT).status_code == 200

    assert login.finish() == 1
    assert "does not come from this issuer" in "".join(login.stderr)


def test_without_a_flag_a_ci_job_uses_the_device_flow_and_a_denial_is_explained(keygrant, person, run_cli, tmp_path):
    login = run_cli("login", "--issuer", keygrant, CI="true", DISPLAY=":0")
    login.wait_for("Using the device flow: this is a CI job")
    user_code = login.wait_for(r"^\s+([A-Z]{4}-[A-Z]{4})$")[1]

    person.deny_device(user_code=user_code.lower().replace("-", ""))

    assert login.finish() == 1
    assert "error: access_denied: the request was denied" in "".join(login.stderr)
    assert login.stdout == ""
    assert not (tmp_path / "key.json").exists()


def test_logout_gives_the_key_back(keygrant, person, run_cli, tmp_path):
    login = run_cli("login", "--device", "--issuer", keygrant)
    person.approve_device(complete_uri=login.wait_for(r"or open (\S+)")[1])
    assert login.finish() == 0, login.stderr
    key = json.loads((tmp_path / "key.json").read_text())["access_token"]

    logout = run_cli("logout")

    assert logout.finish() == 0, logout.stderr
    assert api_owner(keygrant, key).status_code == 401
    assert not (tmp_path / "key.json").exists()
    assert run_cli("whoami").finish() == 1


# --- The polling rules, against scripted answers (RFC 8628 section 3.5) ------------------------


@pytest.fixture
def cli(monkeypatch):
    """The example imported as a module, its clock and sleep replaced: polls take no time."""
    spec = importlib.util.spec_from_file_location("keygrant_cli", CLI)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.slept = []
    now = [0.0]

    def sleep(seconds: float) -> None:
        module.slept.append(seconds)
        now[0] += seconds

    monkeypatch.setattr(module.time, "sleep", sleep)
    monkeypatch.setattr(module.time, "monotonic", lambda: now[0])
    return module


METADATA = {
    "issuer": "https://keys.example.com",
    "token_endpoint": "https://keys.example.com/getKeys/token",
    "device_authorization_endpoint": "https://keys.example.com/getKeys/device/code",
}
STARTED = {
    "device_code": "d" * 43,
    "user_code": "BCDF-GHJK",
    "verification_uri": "https://keys.example.com/getKeys/device",
    "verification_uri_complete": "https://keys.example.com/getKeys/device?user_code=BCDF-GHJK",
    "expires_in": 600,
    "interval": 5,
}


def script(cli, monkeypatch, *answers):
    """Keygrant's answers, in order: the device code first, then one per poll. Returns the requests."""
    answers = [(200, STARTED, {}), *answers]
    sent = []

    def call(url, *, form=None, headers=None):
        sent.append((url, form))
        return answers[len(sent) - 1]

    monkeypatch.setattr(cli, "call", call)
    return sent


def pending(error: str = "authorization_pending", status: int = 400, headers=None):
    return status, {"error": error, "error_description": "..."}, headers or {}


def test_it_waits_the_interval_before_each_poll_and_adds_5_seconds_on_slow_down(cli, monkeypatch):
    sent = script(cli, monkeypatch, pending(), pending("slow_down"), pending(), (200, {"access_token": "kg_x"}, {}))

    assert cli.device_login(METADATA, wait=600) == "kg_x"

    assert cli.slept == [5, 5, 10, 10]
    assert sent[0] == (
        METADATA["device_authorization_endpoint"],
        {"client_id": "keygrant-example-cli", "scope": "key:read"},
    )
    assert sent[1][1] == {
        "grant_type": "urn:ietf:params:oauth:grant-type:device_code",
        "device_code": STARTED["device_code"],
        "client_id": "keygrant-example-cli",
    }


def test_a_throttled_poll_waits_as_long_as_keygrant_says(cli, monkeypatch):
    script(cli, monkeypatch, pending("slow_down", 429, {"Retry-After": "300"}), (200, {"access_token": "kg_x"}, {}))
    assert cli.device_login(METADATA, wait=600) == "kg_x"
    assert cli.slept == [5, 300]


def test_it_gives_up_when_the_code_expires(cli, monkeypatch):
    script(cli, monkeypatch, *[pending()] * 200)
    with pytest.raises(cli.CliError, match="nobody approved the code in time"):
        cli.device_login(METADATA, wait=600)
    assert sum(cli.slept) <= STARTED["expires_in"]


def test_it_gives_up_at_its_own_timeout(cli, monkeypatch):
    script(cli, monkeypatch, *[pending()] * 200)
    with pytest.raises(cli.CliError):
        cli.device_login(METADATA, wait=30)
    assert sum(cli.slept) <= 30


@pytest.mark.parametrize(
    ("error", "explained"),
    [
        ("access_denied", "denied on the consent page"),
        ("expired_token", "expired before it was approved"),
        ("invalid_grant", "the code was refused"),
        ("invalid_client", "does not accept this app's client_id"),
        ("unsupported_grant_type", "does not offer that kind of sign-in"),
        ("invalid_request", "malformed"),
        ("something_new", "Keygrant refused the request"),
    ],
)
def test_each_error_ends_the_polling_with_its_explanation(cli, monkeypatch, error, explained):
    script(cli, monkeypatch, pending(), pending(error))
    with pytest.raises(cli.CliError) as failure:
        cli.device_login(METADATA, wait=600)
    assert str(failure.value).startswith(f"{error}: ")
    assert explained in str(failure.value)
    assert "(Keygrant: ...)" in str(failure.value)


def test_a_provider_without_the_device_flow_is_told_plainly(cli, monkeypatch):
    script(cli, monkeypatch)
    without = {key: value for key, value in METADATA.items() if key != "device_authorization_endpoint"}
    with pytest.raises(cli.CliError, match="does not offer the device flow"):
        cli.device_login(without, wait=600)


@pytest.mark.parametrize(
    ("environment", "reason"),
    [
        ({"SSH_CONNECTION": "10.0.0.1 5000 10.0.0.2 22", "DISPLAY": ":0"}, "SSH"),
        ({"CI": "true", "DISPLAY": ":0"}, "CI"),
        ({"BROWSER": "firefox", "SSH_CONNECTION": "10.0.0.1 5000 10.0.0.2 22"}, None),
    ],
)
def test_it_guesses_when_no_browser_can_be_shown(cli, monkeypatch, environment, reason):
    for name in HEADLESS_SIGNS:
        monkeypatch.delenv(name, raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    guess = cli.why_no_browser()
    assert (guess is None) if reason is None else (reason in guess)
