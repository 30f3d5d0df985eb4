"""Fetching Client ID Metadata Documents, hardened against SSRF and slow servers.

A client_id that is an https URL names a JSON document the client publishes
(MCP authorization, 2025-11-25). Fetching a URL a stranger chose is a
server-side request forgery risk, and it happens before anyone signs in, so
the fetch:

- uses https only, resolves the name once and refuses private, loopback,
  link-local and other non-public addresses, IPv6 forms that embed an IPv4
  address included (NAT64, 6to4, Teredo, IPv4-compatible and -translated);
  it connects to the address it checked (no second DNS lookup to rebind),
  follows no redirects, sends no cookies or credentials;
- holds a worker at most OAUTH_CIMD_TIMEOUT_SECONDS of wall-clock time in
  all: name resolution (in a helper thread, since getaddrinfo has no
  timeout), connection, TLS handshake, headers and body share one deadline,
  so a server that trickles a byte at a time gains nothing;
- reads at most OAUTH_CIMD_MAX_HEADER_BYTES of headers and
  OAUTH_CIMD_MAX_BYTES of body;
- is limited per host (one fetch at a time, OAUTH_CIMD_FETCHES_PER_MINUTE),
  per address it resolves to and per client address asking (the same number
  per minute), and a failure is remembered per host for
  OAUTH_CIMD_FAILURE_CACHE_SECONDS, so nobody can keep workers busy with it;
- answers every failure with one message: why it failed (a timeout, a
  refused connection, a certificate) goes to the log only, or the fetcher
  would tell strangers which ports are open where.

Valid documents are cached for OAUTH_CIMD_CACHE_SECONDS.

OAUTH_CIMD_ALLOW_INSECURE_LOCAL_FETCH lifts the https and address rules so
tests can serve a document from a local http server; the settings refuse
it outside development and tests.
"""

import hashlib
import http.client
import io
import ipaddress
import json
import logging
import select
import socket
import ssl
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings

from accounts.counters import address_bucket, count_hit, store
from accounts.shared_cache import cache_get, cache_set
from oauthprovider.protocol import Client, OAuthError, client_from_metadata_document, validate_metadata_document_url

logger = logging.getLogger(__name__)

UNUSABLE = "The client's metadata document could not be fetched. Try again later, or ask the app's developer."


class MetadataFetchError(Exception):
    """Why a fetch failed: for the log, never for the page."""


def resolve_metadata_client(url: str, *, requester: str | None = None) -> Client:
    """The Client a metadata document URL stands for; OAuthError if unusable.

    `requester` is the client address asking (accounts.audit.client_ip),
    for the per-requester limit.
    """
    insecure = settings.OAUTH_CIMD_ALLOW_INSECURE_LOCAL_FETCH
    parts = validate_metadata_document_url(url, allow_insecure=insecure)
    cache_key = "oauth:cimd:" + hashlib.sha256(url.encode()).hexdigest()
    document = cache_get(cache_key)  # a cache that is down is a miss
    if document is None:
        document = _fetch_within_limits(url, host=parts.host, requester=requester, allow_insecure=insecure)
        client = client_from_metadata_document(url, document, host=parts.host)
        cache_set(cache_key, document, timeout=settings.OAUTH_CIMD_CACHE_SECONDS)
        return client
    return client_from_metadata_document(url, document, host=parts.host)


def _fetch_within_limits(url: str, *, host: str, requester: str | None, allow_insecure: bool) -> dict[str, Any]:
    counters, per_minute = store(), settings.OAUTH_CIMD_FETCHES_PER_MINUTE
    failed_key, busy_key = f"oauth:cimd:failed:{host}", f"oauth:cimd:fetching:{host}"
    bucket = address_bucket(requester) if requester else None

    def refuse(reason: str) -> OAuthError:
        logger.info("client metadata document not fetched: host=%s reason=%s", host, reason)
        return OAuthError("invalid_client", UNUSABLE)

    if counters.get_many([failed_key]):
        raise refuse("failed recently")
    if bucket is not None and count_hit(f"oauth:cimd:requester:{bucket}", window=60) > per_minute:
        raise refuse(f"too many fetches for {bucket}")
    if count_hit(f"oauth:cimd:host:{host}", window=60) > per_minute:
        raise refuse("too many fetches of this host")
    if not counters.claim(busy_key, value=1, ttl=settings.OAUTH_CIMD_TIMEOUT_SECONDS + 5):
        raise refuse("a fetch of this host is in progress")

    def admit(address: str) -> None:
        if count_hit(f"oauth:cimd:address:{address}", window=60) > per_minute:
            raise MetadataFetchError(f"too many fetches from {address}")

    try:
        return fetch_metadata_document(url, allow_insecure=allow_insecure, admit=admit)
    except MetadataFetchError as exc:
        counters.put(failed_key, value=1, ttl=settings.OAUTH_CIMD_FAILURE_CACHE_SECONDS)
        raise refuse(str(exc)) from None
    finally:
        counters.delete(busy_key)


# --- Which addresses may be fetched ---------------------------------------------------------

# IPv6 ranges that carry (or route to) an IPv4 address: the IPv4 address
# inside might be private, and a gateway would deliver there. Refused outright.
_EMBEDS_IPV4 = tuple(
    ipaddress.ip_network(network)
    for network in (
        "64:ff9b::/96",  # NAT64, RFC 6052
        "64:ff9b:1::/48",  # local-use NAT64, RFC 8215
        "2002::/16",  # 6to4, RFC 3056
        "2001::/32",  # Teredo, RFC 4380
        "::/96",  # IPv4-compatible, RFC 4291 (deprecated)
        "::ffff:0:0:0/96",  # IPv4-translated (SIIT), RFC 2765
    )
)


def public_address(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Whether the fetcher may connect to `address`: a global unicast address, embedding no IPv4 one."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped:
            address = address.ipv4_mapped
        elif any(address in network for network in _EMBEDS_IPV4):
            return False
    return address.is_global and not address.is_multicast


# --- One deadline for the whole fetch ------------------------------------------------------


def _remaining(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError("the fetch ran out of time")
    return left


_RESOLVER_SLOTS = threading.BoundedSemaphore(8)


def _resolve(host: str, port: int, deadline: float) -> list:
    """getaddrinfo within the deadline. It has no timeout of its own, so it runs in a thread.

    A lookup that outlives the deadline finishes in the background; at most
    eight run at once per process, so a slow DNS server cannot pile them up.
    """
    if not _RESOLVER_SLOTS.acquire(blocking=False):
        raise MetadataFetchError("too many name lookups in progress")
    outcome: dict[str, Any] = {}
    done = threading.Event()

    def lookup() -> None:
        try:
            outcome["infos"] = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError) as exc:
            outcome["error"] = exc
        finally:
            _RESOLVER_SLOTS.release()
            done.set()

    threading.Thread(target=lookup, name="cimd-resolve", daemon=True).start()
    if not done.wait(_remaining(deadline)):
        raise MetadataFetchError("the host name did not resolve in time")
    if "error" in outcome:
        raise MetadataFetchError(f"the host name does not resolve ({type(outcome['error']).__name__})")
    return outcome["infos"]


class _DeadlineReader(io.RawIOBase):
    """The response stream: every read ends by the deadline, and headers may take only so many bytes."""

    def __init__(self, sock: socket.socket, *, deadline: float, header_limit: int) -> None:
        self._sock = sock
        self._deadline = deadline
        self._header_budget: int | None = header_limit  # None once the headers are read

    def readable(self) -> bool:
        return True

    def headers_read(self) -> None:
        self._header_budget = None

    def readinto(self, buffer) -> int:
        view = memoryview(buffer)
        if self._header_budget is not None:
            if self._header_budget <= 0:
                raise MetadataFetchError("the response headers are too large")
            view = view[: self._header_budget]
        self._sock.settimeout(_remaining(self._deadline))
        count = self._sock.recv_into(view)
        if self._header_budget is not None:
            self._header_budget -= count
        return count


class _DeadlineSocket:
    """What http.client sees of the socket: sends and reads bounded by the deadline."""

    def __init__(self, sock: socket.socket, *, deadline: float, header_limit: int) -> None:
        self._sock = sock
        self._deadline = deadline
        self.reader = _DeadlineReader(sock, deadline=deadline, header_limit=header_limit)

    def sendall(self, data: bytes) -> None:
        self._sock.settimeout(_remaining(self._deadline))
        self._sock.sendall(data)

    def makefile(self, mode: str = "rb", *args, **kwargs) -> io.BufferedReader:
        return io.BufferedReader(self.reader)

    def close(self) -> None:
        # http.client closes the connection once the response "owns" it (Connection: close)
        # while the body is still to be read; the fetch closes the socket itself when done.
        pass


def _tls_handshake(sock: socket.socket, host: str, deadline: float) -> ssl.SSLSocket:
    """The handshake within the deadline (a blocking handshake's timeout restarts at every read)."""
    tls = ssl.create_default_context().wrap_socket(sock, server_hostname=host, do_handshake_on_connect=False)
    tls.setblocking(False)
    try:
        while True:
            try:
                tls.do_handshake()
                return tls
            except ssl.SSLWantReadError:
                ready = select.select([tls], [], [], _remaining(deadline))[0]
            except ssl.SSLWantWriteError:
                ready = select.select([], [tls], [], _remaining(deadline))[1]
            if not ready:
                raise TimeoutError("the TLS handshake ran out of time")
    except BaseException:
        tls.close()
        raise


class _PinnedConnection(http.client.HTTPConnection):
    """Connects to an address checked beforehand (TLS still verifies the hostname), all by one deadline."""

    def __init__(self, host: str, port: int, *, address: str, secure: bool, deadline: float) -> None:
        super().__init__(host, port)
        self._address = address
        self._secure = secure
        self._deadline = deadline
        self.raw_socket: socket.socket | None = None
        self.reader: _DeadlineReader | None = None

    def connect(self) -> None:
        self.raw_socket = socket.create_connection((self._address, self.port), _remaining(self._deadline))
        if self._secure:
            self.raw_socket = _tls_handshake(self.raw_socket, self.host, self._deadline)
        limit = settings.OAUTH_CIMD_MAX_HEADER_BYTES
        self.sock = _DeadlineSocket(self.raw_socket, deadline=self._deadline, header_limit=limit)
        self.reader = self.sock.reader

    def close_socket(self) -> None:
        """Close for good (http.client's close() is called before the body is read)."""
        self.close()
        if self.raw_socket is not None:
            self.raw_socket.close()


def fetch_metadata_document(
    url: str, *, allow_insecure: bool = False, admit: Callable[[str], None] | None = None
) -> dict[str, Any]:
    """GET the document within one deadline; MetadataFetchError (with a reason for the log) if that fails.

    `admit` is called with the address about to be connected to, and may
    refuse it by raising MetadataFetchError (the per-address limit).
    """
    deadline = time.monotonic() + settings.OAUTH_CIMD_TIMEOUT_SECONDS
    parts = urlsplit(url)
    secure = parts.scheme == "https"
    if not secure and not allow_insecure:
        raise MetadataFetchError("only https URLs are fetched")
    host = parts.hostname or ""
    port = parts.port or (443 if secure else 80)
    try:
        infos = _resolve(host, port, deadline)
        addresses = [ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos]
    except (TimeoutError, ValueError) as exc:
        raise MetadataFetchError(f"the host name does not resolve ({type(exc).__name__})") from None
    if not addresses:
        raise MetadataFetchError("the host name does not resolve")
    if not allow_insecure and not all(public_address(a) for a in addresses):
        raise MetadataFetchError("the host resolves to a private or reserved address")
    if admit is not None:
        admit(str(addresses[0]))
    connection = _PinnedConnection(host, port, address=str(addresses[0]), secure=secure, deadline=deadline)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    limit = settings.OAUTH_CIMD_MAX_BYTES
    try:
        connection.request(
            "GET", path, headers={"Accept": "application/json", "User-Agent": "Keygrant client-metadata fetcher"}
        )
        response = connection.getresponse()
        connection.reader.headers_read()
        if response.status != 200:
            raise MetadataFetchError(f"the server answered HTTP {response.status} (redirects are not followed)")
        body = b""
        while len(body) <= limit:
            chunk = response.read1(4096)
            if not chunk:
                break
            body += chunk
        if len(body) > limit:
            raise MetadataFetchError("the document is too large")
    except (OSError, http.client.HTTPException, ssl.SSLError, ValueError) as exc:
        raise MetadataFetchError(f"the fetch failed ({type(exc).__name__}: {exc})") from None
    finally:
        connection.close_socket()
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise MetadataFetchError("the document is not JSON (or nested too deeply)") from None
    if not isinstance(document, dict):
        raise MetadataFetchError("the document is not a JSON object")
    return document
