"""Client ID Metadata Documents: fetched, validated, cached; the fetcher resists SSRF."""

import html
import json
import re
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
from oauthprovider.protocol import OAuthError
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
        (lambda url: [1, 2], "could not be fetched"),  # fetch failures get one message (issue #13 item 8)
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
        # IPv6 forms that embed an IPv4 address (issue #13 item 7)
        "64:ff9b::7f00:1",  # NAT64 of 127.0.0.1
        "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254
        "64:ff9b:1::a00:1",  # local-use NAT64
        "2002:7f00:1::1",  # 6to4 of 127.0.0.1
        "2001:0:4136:e378:8000:63bf:3fff:fdd2",  # Teredo
        "::7f00:1",  # IPv4-compatible 127.0.0.1
        "::ffff:0:7f00:1",  # IPv4-translated (SIIT) 127.0.0.1
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


# --- Issue #13: the fetch cannot hold a worker, nor tell strangers about the network ---------


class TrickleServer:
    """A local server that answers one byte group at a time, for at most `lasts` seconds; the test stops it."""

    def __init__(self, *, trickle: str, lasts: float = 5.0) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.1)
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}/slow.json"
        self.trickle = trickle
        self.lasts = lasts
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.stopped.is_set():
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            with conn:
                self._trickle(conn)

    def _trickle(self, conn: socket.socket) -> None:
        started = time.monotonic()
        try:
            if self.trickle == "headers":
                conn.sendall(b"HTTP/1.1 200 OK\r\n")
                piece = b"X-Slow: yes\r\n"
            else:
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 4000\r\n\r\n")
                piece = b" "
            while not self.stopped.is_set() and time.monotonic() - started < self.lasts:
                conn.sendall(piece)
                time.sleep(0.05)
        except OSError:
            pass  # the fetcher hung up: what it should do

    def close(self) -> None:
        self.stopped.set()
        self.thread.join(timeout=5)
        self.listener.close()


@pytest.mark.parametrize("trickle", ["headers", "body"])
def test_a_server_that_trickles_is_dropped_at_the_deadline(settings, trickle):
    """Issue #13 item 1: the deadline covers the headers too, not only the body."""
    settings.OAUTH_CIMD_TIMEOUT_SECONDS = 0.5
    server = TrickleServer(trickle=trickle)
    try:
        started = time.monotonic()
        with pytest.raises(MetadataFetchError):
            fetch_metadata_document(server.url, allow_insecure=True)
        assert time.monotonic() - started < 1.5
    finally:
        server.close()


def test_a_name_that_takes_forever_to_resolve_is_given_up_at_the_deadline(monkeypatch, settings):
    settings.OAUTH_CIMD_TIMEOUT_SECONDS = 0.5
    release = threading.Event()

    def slow_getaddrinfo(*args, **kwargs):
        release.wait(5)  # a DNS server that never answers (bounded, so nothing outlives the test)
        raise socket.gaierror("no answer")

    monkeypatch.setattr(cimd.socket, "getaddrinfo", slow_getaddrinfo)
    try:
        started = time.monotonic()
        with pytest.raises(MetadataFetchError):
            fetch_metadata_document("https://slow-dns.example/client.json")
        assert time.monotonic() - started < 1.5
    finally:
        release.set()


def test_response_headers_are_capped(docs, settings):
    settings.OAUTH_CIMD_MAX_HEADER_BYTES = 2048
    padding = {f"X-Padding-{n}": "p" * 100 for n in range(40)}
    url = docs.publish("/padded.json", {"client_id": "x"}, headers=padding)
    with pytest.raises(MetadataFetchError, match="headers are too large"):
        fetch_metadata_document(url, allow_insecure=True)
    docs.routes["/small.json"] = (200, {"X-Padding": "p" * 100}, b'{"client_id": "x"}')
    assert fetch_metadata_document(docs.base + "/small.json", allow_insecure=True) == {"client_id": "x"}


def test_a_deeply_nested_document_is_refused_not_a_crash(docs, alice_client, pkce_pair):
    """Issue #13 item 13: 5,000 "[" made json.loads raise RecursionError (500)."""
    url = docs.publish("/deep.json", b"[" * 5000)
    with pytest.raises(MetadataFetchError):
        fetch_metadata_document(url, allow_insecure=True)
    deep = docs.publish("/deep2.json", b"[" * 5000)
    response = alice_client.get(authorize_url(cimd_params(pkce_pair, deep)))
    assert response.status_code == 400


def details_of(response) -> str:
    match = re.search(r"<dt>Details</dt><dd>(.*?)</dd>", response.content.decode(), re.DOTALL)
    assert match, response.content[:500]
    return html.unescape(match.group(1))


def test_every_fetch_failure_gets_the_same_message(docs, alice_client, pkce_pair, settings):
    """Issue #13 item 8: no exception names on a page anyone can load (no port-scan oracle)."""
    settings.OAUTH_CIMD_TIMEOUT_SECONDS = 0.3
    closed = socket.create_server(("127.0.0.1", 0))
    closed_port = closed.getsockname()[1]
    closed.close()  # nothing listens there now: connection refused
    failures = {
        "refused": (f"http://127.0.0.1:{closed_port}/client.json", 0.0),
        "timed out": (docs.publish("/slow.json", {"client_id": "x"}), 1.0),
        "HTTP 500": (docs.publish("/error.json", b"{}", status=500), 0.0),
        "not JSON": (docs.publish("/text.json", b"hello"), 0.0),
    }
    for url, delay in failures.values():
        docs.delay = delay
        cache.clear()  # forget the host's last failure: each failure must speak for itself
        response = alice_client.get(authorize_url(cimd_params(pkce_pair, url)))
        assert response.status_code == 400
        assert details_of(response) == cimd.UNUSABLE


def test_a_failed_fetch_is_remembered_per_host_for_a_while(docs, alice_client, pkce_pair, settings, clock):
    settings.OAUTH_CIMD_FAILURE_CACHE_SECONDS = 60
    url = docs.publish("/c.json", b"{}", status=500)
    assert alice_client.get(authorize_url(cimd_params(pkce_pair, url))).status_code == 400
    docs.publish("/c.json", client_document(url))  # fixed at once...
    other = docs.publish("/other.json", client_document(docs.base + "/other.json"))
    assert alice_client.get(authorize_url(cimd_params(pkce_pair, url))).status_code == 400
    assert alice_client.get(authorize_url(cimd_params(pkce_pair, other))).status_code == 400
    assert docs.hits == ["/c.json"]  # ...but the host is not asked again so soon
    clock.advance(60)
    assert alice_client.get(authorize_url(cimd_params(pkce_pair, url))).status_code == 200


def test_fetches_of_one_host_are_limited_per_minute(docs, alice_client, pkce_pair, settings, clock):
    settings.OAUTH_CIMD_FETCHES_PER_MINUTE = 2
    for n in range(4):  # each document names another client_id: never cached, fetched each time
        url = docs.publish(f"/c{n}.json", client_document("https://elsewhere.example/c.json"))
        assert alice_client.get(authorize_url(cimd_params(pkce_pair, url))).status_code == 400
    assert len(docs.hits) == 2
    clock.advance(60)
    url = docs.publish("/ok.json", client_document(docs.base + "/ok.json"))
    assert alice_client.get(authorize_url(cimd_params(pkce_pair, url))).status_code == 200


def test_only_one_fetch_of_a_host_runs_at_a_time(docs, alice_client, pkce_pair):
    from accounts.counters import store

    url = docs.publish("/c.json", client_document(docs.base + "/c.json"))
    store().claim("oauth:cimd:fetching:127.0.0.1", value=1, ttl=30)  # another worker is fetching from it
    assert alice_client.get(authorize_url(cimd_params(pkce_pair, url))).status_code == 400
    assert docs.hits == []


def fake_public_network(monkeypatch, address: str = "93.184.216.34") -> list:
    """Every name resolves to one public address; connecting records the attempt and fails (nothing leaves)."""
    attempts: list = []
    monkeypatch.setattr(
        cimd.socket, "getaddrinfo", lambda *a, **k: [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, 443))]
    )

    def record(address, timeout):
        attempts.append(address)
        raise ConnectionRefusedError("not here")

    monkeypatch.setattr(cimd.socket, "create_connection", record)
    return attempts


def test_fetches_from_one_address_are_limited_whatever_the_host_names(db, monkeypatch, settings):
    """Wildcard DNS gives an attacker endless host names for one slow server."""
    settings.OAUTH_CIMD_FETCHES_PER_MINUTE = 2
    attempts = fake_public_network(monkeypatch)
    for n in range(4):
        with pytest.raises(OAuthError):
            cimd.resolve_metadata_client(f"https://host{n}.slow.example/c.json")
    assert len(attempts) == 2


def test_fetches_asked_for_by_one_client_address_are_limited(db, monkeypatch, settings):
    settings.OAUTH_CIMD_FETCHES_PER_MINUTE = 2
    fetched = []
    monkeypatch.setattr(cimd, "fetch_metadata_document", lambda url, **kw: fetched.append(url) or {})
    for n in range(4):
        with pytest.raises(OAuthError):
            cimd.resolve_metadata_client(f"https://app{n}.example/c.json", requester="203.0.113.9")
    assert len(fetched) == 2
    with pytest.raises(OAuthError):
        cimd.resolve_metadata_client("https://app9.example/c.json", requester="198.51.100.1")
    assert len(fetched) == 3  # another client address is not held back


def test_an_ip_literal_embedding_a_private_ipv4_is_never_connected_to(db, alice_client, pkce_pair, monkeypatch):
    """Issue #13 item 7: [64:ff9b::7f00:1] made the fetcher connect (to 127.0.0.1 through NAT64)."""
    attempts = []
    monkeypatch.setattr(cimd.socket, "create_connection", lambda address, *a, **k: attempts.append(address))
    for host in ("[64:ff9b::7f00:1]", "[2002:7f00:1::1]", "[::ffff:0:7f00:1]"):
        response = alice_client.get(authorize_url(cimd_params(pkce_pair, f"https://{host}/client.json")))
        assert response.status_code == 400
    assert attempts == []


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("93.184.216.34", True),
        ("2606:2800:220:1:248:1893:25c8:1946", True),
        ("::ffff:93.184.216.34", True),
        ("64:ff9b::5db8:d822", False),  # NAT64, even of a public address: the gateway is on our side
        ("2002:5db8:d822::1", False),
        ("10.0.0.1", False),
        ("::1", False),
    ],
)
def test_which_addresses_the_fetcher_may_connect_to(address, public):
    import ipaddress

    assert cimd.public_address(ipaddress.ip_address(address)) is public


def test_format_characters_in_client_name_are_dropped_and_the_name_isolated(docs, alice_client, pkce_pair):
    """Issue #13 item 12: U+202E and the isolates reordered the consent sentence around the name."""
    url = docs.base + "/bidi.json"
    docs.publish("/bidi.json", client_document(url, client_name="Good\u202eliaM\u2066 App\u2069\u200b"))
    page = alice_client.get(authorize_url(cimd_params(pkce_pair, url)))
    html = page.content.decode()
    assert "“<bdi>GoodliaM App</bdi>”" in html
    for character in "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200b\u200e\u200f":
        assert character not in html


def test_the_loopback_switch_covers_metadata_document_clients(docs, alice_client, pkce_pair, settings):
    """Issue #13 item 10: with loopback clients off, a document's http://localhost redirect got a consent page."""
    settings.OAUTH_ALLOW_LOOPBACK_CLIENTS = False
    url = docs.base + "/loopback.json"
    docs.publish("/loopback.json", client_document(url, redirect_uris=["http://localhost:33418/callback"]))
    response = alice_client.get(
        authorize_url(cimd_params(pkce_pair, url, redirect_uri="http://localhost:33418/callback"))
    )
    assert response.status_code == 400
    assert "loopback clients" in response.content.decode()
    assert "Location" not in response
