"""Client ID Metadata Documents: fetched, validated, cached; the fetcher resists SSRF."""

import json
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from django.core.cache import cache
from django.test import Client

from oauthprovider import cimd
from oauthprovider.cimd import MetadataFetchError, fetch_metadata_document
from oauthprovider.models import Grant
from tests.conftest import authorize_params, authorize_url, consent_request_id, exchange, query_of

ROOT = Path(__file__).resolve().parents[2]


class DocumentServer:
    """A local http server (the test double the production settings refuse)."""

    def __init__(self) -> None:
        self.routes: dict[str, tuple[int, dict, bytes]] = {}
        self.hits: list[str] = []
        self.delay = 0.0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.hits.append(self.path)
                if outer.delay:
                    time.sleep(outer.delay)
                status, headers, body = outer.routes.get(self.path, (404, {}, b"not found"))
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                try:
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the fetcher gave up first, as it should

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def publish(self, path: str, document, status: int = 200, headers: dict | None = None) -> str:
        body = document if isinstance(document, bytes) else json.dumps(document).encode()
        self.routes[path] = (status, {"Content-Type": "application/json", **(headers or {})}, body)
        return self.base + path

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def docs(settings):
    settings.OAUTH_CIMD_ALLOW_INSECURE_LOCAL_FETCH = True
    settings.OAUTH_CIMD_TIMEOUT_SECONDS = 1.0
    server = DocumentServer()
    yield server
    server.close()


def client_document(url: str, **extra) -> dict:
    return {
        "client_id": url,
        "client_name": "Example MCP Client",
        "redirect_uris": ["http://127.0.0.1:33418/callback"],
        "token_endpoint_auth_method": "none",
        **extra,
    }


def cimd_params(pkce, url: str, redirect_uri="http://127.0.0.1:33418/callback") -> dict:
    return authorize_params(pkce, client_id=url, redirect_uri=redirect_uri)


def test_a_metadata_document_client_gets_a_key(docs, alice_client, pkce_pair):
    url = docs.base + "/oauth/client.json"
    docs.publish("/oauth/client.json", client_document(url))
    page = alice_client.get(authorize_url(cimd_params(pkce_pair, url)))
    assert page.status_code == 200, page.content[:300]
    html = page.content.decode()
    assert "Example MCP Client" in html and "127.0.0.1" in html
    assert 'data-testid="loopback-redirect-notice"' in html
    response = alice_client.post(
        "/getKeys/authorize", {"request": consent_request_id(page), "decision": "allow", "key": "new"}
    )
    assert response.status_code == 302
    code = query_of(response["Location"])["code"][0]
    token = exchange(Client(), code, pkce_pair, client_id=url, redirect_uri="http://127.0.0.1:33418/callback")
    assert token.status_code == 200
    grant = Grant.objects.get()
    assert grant.client_id == url
    assert grant.client_name == "Example MCP Client"


def test_the_document_is_cached(docs, alice_client, pkce_pair):
    url = docs.base + "/c.json"
    docs.publish("/c.json", client_document(url))
    alice_client.get(authorize_url(cimd_params(pkce_pair, url)))
    alice_client.get(authorize_url(cimd_params(pkce_pair, url)))
    assert docs.hits.count("/c.json") == 1


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda url: client_document(url + "x"), "another client_id"),
        (lambda url: client_document(url, redirect_uris=["http://127.0.0.1:9/other"]), "not one of those"),
        (lambda url: client_document(url, redirect_uris=[]), "no valid redirect_uris"),
        (lambda url: client_document(url, token_endpoint_auth_method="private_key_jwt"), "public clients"),
        (lambda url: [1, 2], "not a JSON object"),
    ],
)
def test_an_unusable_document_gets_our_error_page_and_no_redirect(docs, alice_client, pkce_pair, mutate, reason):
    url = docs.base + "/bad.json"
    docs.publish("/bad.json", mutate(url))
    response = alice_client.get(authorize_url(cimd_params(pkce_pair, url)))
    assert response.status_code == 400
    assert "Location" not in response
    assert reason in response.content.decode()


def test_a_redirect_to_another_host_is_refused_even_if_listed(docs, alice_client, pkce_pair):
    url = docs.base + "/c.json"
    docs.publish("/c.json", client_document(url, redirect_uris=["https://evil.example/cb"]))
    response = alice_client.get(authorize_url(cimd_params(pkce_pair, url, redirect_uri="https://evil.example/cb")))
    assert response.status_code == 400


@pytest.mark.parametrize(("status", "headers"), [(302, {"Location": "http://127.0.0.1:1/"}), (404, {}), (500, {})])
def test_redirects_and_errors_are_not_followed(docs, status, headers):
    url = docs.publish("/r.json", b"{}", status=status, headers=headers)
    with pytest.raises(MetadataFetchError):
        fetch_metadata_document(url, allow_insecure=True)


def test_oversized_documents_are_refused(docs, settings):
    url = docs.publish("/big.json", {"client_id": "x", "pad": "a" * (settings.OAUTH_CIMD_MAX_BYTES + 10)})
    with pytest.raises(MetadataFetchError, match="too large"):
        fetch_metadata_document(url, allow_insecure=True)


def test_slow_servers_time_out(docs, settings):
    settings.OAUTH_CIMD_TIMEOUT_SECONDS = 0.3
    docs.delay = 1.0
    url = docs.publish("/slow.json", {"client_id": "x"})
    with pytest.raises(MetadataFetchError):
        fetch_metadata_document(url, allow_insecure=True)


def test_non_json_is_refused(docs):
    url = docs.publish("/html", b"<html>hello</html>")
    with pytest.raises(MetadataFetchError, match="not JSON"):
        fetch_metadata_document(url, allow_insecure=True)


# --- SSRF rules with the production setting (no insecure fetch) -------------------------


def test_http_urls_are_refused_in_production_mode(db, settings, alice_client, pkce_pair):
    settings.OAUTH_CIMD_ALLOW_INSECURE_LOCAL_FETCH = False
    response = alice_client.get(authorize_url(cimd_params(pkce_pair, "http://127.0.0.1:1/client.json")))
    assert response.status_code == 400
    assert "https" in response.content.decode()


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",
        "::1",
        "fe80::1",
        "fc00::1",
        "::ffff:127.0.0.1",
        "224.0.0.1",
    ],
)
def test_names_resolving_to_private_addresses_are_refused(monkeypatch, address):
    connected = []
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    monkeypatch.setattr(
        cimd.socket, "getaddrinfo", lambda *a, **k: [(family, socket.SOCK_STREAM, 6, "", (address, 443))]
    )
    monkeypatch.setattr(cimd.socket, "create_connection", lambda *a, **k: connected.append(a))
    with pytest.raises(MetadataFetchError, match="private or reserved"):
        fetch_metadata_document("https://rebind.example/client.json")
    assert connected == []


def test_any_private_address_among_several_refuses_the_name(monkeypatch):
    monkeypatch.setattr(
        cimd.socket,
        "getaddrinfo",
        lambda *a, **k: [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", 443)),
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.0.0.5", 443)),
        ],
    )
    with pytest.raises(MetadataFetchError):
        fetch_metadata_document("https://mixed.example/client.json")


def test_the_connection_goes_to_the_checked_address(monkeypatch, settings):
    """No second DNS lookup: a rebinding name cannot swap in a private address."""
    monkeypatch.setattr(
        cimd.socket,
        "getaddrinfo",
        lambda *a, **k: [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", 443))],
    )
    seen = []

    def fake_connect(address, timeout):
        seen.append(address)
        raise OSError("stop here")

    monkeypatch.setattr(cimd.socket, "create_connection", fake_connect)
    with pytest.raises(MetadataFetchError):
        fetch_metadata_document("https://public.example/client.json")
    assert seen == [("93.184.216.34", 443)]


@pytest.mark.parametrize(
    "url",
    [
        "https://app.example",
        "https://app.example/",
        "https://user@app.example/c.json",
        "https://app.example/c.json#frag",
        "https://app.example/a/../c.json",
        "https://app.example/" + "a" * 300,
    ],
)
def test_malformed_client_id_urls_are_refused_before_any_fetch(db, alice_client, pkce_pair, monkeypatch, url):
    monkeypatch.setattr(cimd, "fetch_metadata_document", lambda *a, **k: pytest.fail("fetched"))
    response = alice_client.get(authorize_url(cimd_params(pkce_pair, url)))
    assert response.status_code == 400


def test_metadata_documents_can_be_turned_off(db, settings, alice_client, pkce_pair):
    settings.OAUTH_CIMD_ENABLED = False
    response = alice_client.get(authorize_url(cimd_params(pkce_pair, "https://app.example/c.json")))
    assert response.status_code == 400
    body = Client().get("/.well-known/oauth-authorization-server").json()
    assert body["client_id_metadata_document_supported"] is False


def test_production_settings_refuse_the_insecure_fetch_flag(tmp_path):
    env = {
        "PATH": "/usr/bin:/bin",
        "SECRET_KEY": "a-real-looking-secret-" + "x" * 40,
        "KEY_ENCRYPTION_KEYS": "q" * 43 + "=",
        "OAUTH_ISSUER": "https://keys.example.com",
        "DATABASE_URL": f"sqlite:///{tmp_path}/db.sqlite3",
        "OAUTH_CIMD_ALLOW_INSECURE_LOCAL_FETCH": "1",
        "ENV_FILE": str(tmp_path / "no.env"),
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode != 0
    assert "OAUTH_CIMD_ALLOW_INSECURE_LOCAL_FETCH" in result.stderr


@pytest.fixture(autouse=True)
def _clear_cache():
    cache.clear()
