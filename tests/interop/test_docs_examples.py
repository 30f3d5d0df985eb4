"""The Python examples in docs/clients.md, run as written against Keygrant under a live server."""

import queue
import re
import threading
from pathlib import Path

import httpx
import pytest

from tests.interop.browser import redirect_query

pytestmark = pytest.mark.interop

DOC = Path(__file__).resolve().parents[2] / "docs" / "clients.md"
TIMEOUT = httpx.Timeout(10.0)


def doc_example(first_line: str) -> dict:
    """Execute the ```python block of docs/clients.md that starts with `first_line`."""
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.DOTALL)
    [code] = [block for block in blocks if block.startswith(first_line)]
    namespace: dict = {"__name__": "docs_example"}
    exec(compile(code, f"{DOC}:{first_line}", "exec"), namespace)
    return namespace


def test_the_server_app_example_gets_a_key(keygrant, person):
    example = doc_example("import base64")
    example["KEYGRANT"] = keygrant
    session: dict = {}

    location = person.approve(example["authorization_url"](session))
    key = example["finish"](session, redirect_query(location))

    me = httpx.get(f"{keygrant}/v1/me", headers={"x-api-key": key}, timeout=TIMEOUT)
    assert me.json()["user"]["username"] == "carol"
    with pytest.raises(example["KeygrantError"], match="state"):
        example["finish"](session, redirect_query(location))


def test_the_server_app_example_reports_a_denial(keygrant, person):
    example = doc_example("import base64")
    example["KEYGRANT"] = keygrant
    session: dict = {}

    location = person.deny(example["authorization_url"](session))

    with pytest.raises(example["KeygrantError"], match="access_denied"):
        example["finish"](session, redirect_query(location))


def test_the_cli_example_gets_a_key_through_a_loopback_redirect(keygrant, person, monkeypatch):
    example = doc_example('"""Get a Keygrant API key for this computer')
    example["KEYGRANT"] = keygrant

    def open_in_browser(url: str) -> bool:
        # The person allows; their browser then loads the loopback redirect.
        location = person.approve(url)
        assert location.startswith("http://127.0.0.1:")
        assert httpx.get(location, timeout=TIMEOUT).status_code == 200
        return True

    monkeypatch.setattr(example["webbrowser"], "open", open_in_browser)

    key = example["get_key"]()

    me = httpx.get(f"{keygrant}/v1/me", headers={"x-api-key": key}, timeout=TIMEOUT)
    assert me.json()["key"]["name"] == "get-key-example"
    assert "An app on your computer that calls itself" in person.consent_pages[-1]


def test_the_device_flow_example_gets_a_key(keygrant, person, settings):
    settings.OAUTH_DEVICE_POLL_INTERVAL_SECONDS = 1  # the live server reads it per request
    example = doc_example('"""Get a Keygrant API key on a computer without a browser')
    example["KEYGRANT"] = keygrant
    printed: queue.Queue[str] = queue.Queue()
    example["print"] = printed.put  # what the terminal shows
    keys: list[str] = []
    device = threading.Thread(target=lambda: keys.append(example["get_key_by_device"]()), daemon=True)
    device.start()

    printed.get(timeout=10)
    complete_uri = re.search(r"\(or open (\S+)\)", printed.get(timeout=10))[1]
    person.approve_device(complete_uri=complete_uri)
    device.join(30)

    [key] = keys
    me = httpx.get(f"{keygrant}/v1/me", headers={"x-api-key": key}, timeout=TIMEOUT)
    assert me.json()["user"]["username"] == "carol"
    assert me.json()["key"]["name"] == "findall-cli"
