"""Fetching Client ID Metadata Documents, hardened against SSRF.

A client_id that is an https URL names a JSON document the client publishes
(MCP authorization, 2025-11-25). Fetching a URL a stranger chose is a
server-side request forgery risk, so the fetch: uses https only, resolves
the name once and refuses private, loopback, link-local and other
non-public addresses, connects to the address it checked (no second DNS
lookup to rebind), follows no redirects, sends no cookies or credentials,
and reads at most OAUTH_CIMD_MAX_BYTES within OAUTH_CIMD_TIMEOUT_SECONDS.
Valid documents are cached for OAUTH_CIMD_CACHE_SECONDS.

OAUTH_CIMD_ALLOW_INSECURE_LOCAL_FETCH lifts the https and address rules so
tests can serve a document from a local http server; the settings refuse
it outside development and tests.
"""

import hashlib
import http.client
import ipaddress
import json
import logging
import socket
import ssl
import time
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.cache import cache

from oauthprovider.protocol import Client, OAuthError, client_from_metadata_document, validate_metadata_document_url

logger = logging.getLogger(__name__)


class MetadataFetchError(Exception):
    pass


def resolve_metadata_client(url: str) -> Client:
    """The Client a metadata document URL stands for; OAuthError if unusable."""
    insecure = settings.OAUTH_CIMD_ALLOW_INSECURE_LOCAL_FETCH
    parts = validate_metadata_document_url(url, allow_insecure=insecure)
    cache_key = "oauth:cimd:" + hashlib.sha256(url.encode()).hexdigest()
    document = cache.get(cache_key)
    if document is None:
        try:
            document = fetch_metadata_document(url, allow_insecure=insecure)
        except MetadataFetchError as exc:
            logger.info("client metadata document refused: host=%s reason=%s", parts.host, exc)
            raise OAuthError("invalid_client", f"The client's metadata document could not be used: {exc}") from None
        client = client_from_metadata_document(url, document, host=parts.host)
        cache.set(cache_key, document, timeout=settings.OAUTH_CIMD_CACHE_SECONDS)
        return client
    return client_from_metadata_document(url, document, host=parts.host)


def _public_address(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """Connects to an address checked beforehand, while TLS still verifies the hostname."""

    def __init__(self, host: str, port: int, *, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self._address = address

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


class _PinnedHTTPConnection(http.client.HTTPConnection):
    def __init__(self, host: str, port: int, *, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self._address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


def fetch_metadata_document(url: str, *, allow_insecure: bool = False) -> dict[str, Any]:
    parts = urlsplit(url)
    secure = parts.scheme == "https"
    if not secure and not allow_insecure:
        raise MetadataFetchError("only https URLs are fetched")
    host = parts.hostname or ""
    port = parts.port or (443 if secure else 80)
    timeout = settings.OAUTH_CIMD_TIMEOUT_SECONDS
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError, OSError):
        raise MetadataFetchError("the host name does not resolve") from None
    addresses = [ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos]
    if not addresses:
        raise MetadataFetchError("the host name does not resolve")
    if not allow_insecure and not all(_public_address(a) for a in addresses):
        raise MetadataFetchError("the host resolves to a private or reserved address")
    connection_class = _PinnedHTTPSConnection if secure else _PinnedHTTPConnection
    connection = connection_class(host, port, address=str(addresses[0]), timeout=timeout)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    deadline = time.monotonic() + timeout
    limit = settings.OAUTH_CIMD_MAX_BYTES
    try:
        connection.request(
            "GET", path, headers={"Accept": "application/json", "User-Agent": "Keygrant client-metadata fetcher"}
        )
        response = connection.getresponse()
        if response.status != 200:
            raise MetadataFetchError(f"the server answered HTTP {response.status} (redirects are not followed)")
        body = b""
        while len(body) <= limit:
            if time.monotonic() > deadline:
                raise MetadataFetchError("the server took too long")
            chunk = response.read1(4096)
            if not chunk:
                break
            body += chunk
        if len(body) > limit:
            raise MetadataFetchError("the document is too large")
    except (OSError, http.client.HTTPException, ssl.SSLError) as exc:
        raise MetadataFetchError(f"the fetch failed ({type(exc).__name__})") from None
    finally:
        connection.close()
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise MetadataFetchError("the document is not JSON") from None
    if not isinstance(document, dict):
        raise MetadataFetchError("the document is not a JSON object")
    return document
