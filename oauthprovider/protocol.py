"""The OAuth 2.0 rules Keygrant follows, as plain functions.

No HTTP requests and no database here: strings, mappings and dataclasses in,
dataclasses or an `OAuthError` out, so each rule can be tested (and read)
next to the RFC section it implements. See DESIGN.md for the contract.
"""

import base64
import hashlib
import hmac
import re
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from accounts.clients import (
    LOOPBACK_HOSTS,
    SELF_NAMED_MARK,
    ascii_host,
    is_document_url,
    self_named_record,
    without_format_characters,
)

SCOPE_KEY_READ = "key:read"
SUPPORTED_SCOPES = (SCOPE_KEY_READ,)
GRANT_TYPE_AUTHORIZATION_CODE = "authorization_code"
GRANT_TYPE_DEVICE_CODE = "urn:ietf:params:oauth:grant-type:device_code"  # RFC 8628 section 3.4

# Longest value accepted per parameter; longer is `invalid_request`.
MAX_CLIENT_ID = 253  # a DNS name (RFC 1035 section 2.3.4)
MAX_REDIRECT_URI = 2000
MAX_STATE = 1024
MAX_SCOPE = 256
MAX_SHORT = 128  # response_type, code_challenge, code_challenge_method, grant_type
MAX_CODE = 256
MAX_SELF_NAME = 100  # the client_id of an app that names itself
# RFC 7636 4.1 asks clients for 43-128 characters, but the reference client
# (the Quick Start's generatePKCE) makes 84-170: see docs/decisions.md.
MAX_VERIFIER = 255

Params = Mapping[str, Sequence[str]]


class OAuthError(Exception):
    """An OAuth error response (RFC 6749 sections 4.1.2.1 and 5.2, RFC 7591 section 3.2.2).

    Where it may be reported is the caller's business: the authorization
    endpoint tells the app only about errors found after the client and its
    redirect URI were validated (see views/authorize.py).
    """

    def __init__(self, error: str, description: str, *, status: int = 400) -> None:
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = description
        self.status = status

    def as_dict(self) -> dict[str, str]:
        return {"error": self.error, "error_description": self.description}


def _bad_client(description: str) -> OAuthError:
    return OAuthError("invalid_request", description)


# --- Parameters ----------------------------------------------------------------


def single_param(params: Params, name: str, *, max_length: int) -> str | None:
    """One value of `name`, or None when absent or empty (RFC 6749 section 3.1).

    Parameters must not be repeated (section 3.1); values longer than
    `max_length` or carrying control characters are refused before they can
    reach a template, a log line or a database column.
    """
    given = params.get(name, ())
    values = [v for v in given if v != ""]
    if len(given) > 1:
        raise OAuthError("invalid_request", f"The {name} parameter is repeated.")
    if not values:
        return None
    value = values[0]
    if len(value) > max_length:
        raise OAuthError("invalid_request", f"The {name} parameter is too long.")
    if _has_control_chars(value):
        raise OAuthError("invalid_request", f"The {name} parameter contains control characters.")
    return value


def _has_control_chars(value: str) -> bool:
    return any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in value)


# --- Clients -------------------------------------------------------------------

_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)")


@dataclass(frozen=True)
class Client:
    """A client app (DESIGN.md "Clients"), one of three kinds.

    - A website, identified by its hostname: redirect URIs must be https on
      that host, so the redirect proves the name.
    - An app that names itself (`is_self_named`): a native app coming back
      to a loopback address, or a device in the device flow. Any short
      printable name; nothing proves it, and it is never shown as a website.
    - An app identified by the https URL of its Client ID Metadata Document
      (MCP 2025-11-25): `name` and `redirect_uris` come from that document,
      fetched from `host`, and redirect URIs must be among them exactly.

    How people see a client is accounts.clients.ClientName's business.
    """

    client_id: str  # exactly as the app sent it
    host: str = ""  # lower-case IDNA A-labels: the website's or the document's host ("" if self-named)
    is_self_named: bool = False
    name: str = ""  # the name a metadata document gives (unverified)
    redirect_uris: tuple[str, ...] = ()
    is_metadata_document: bool = False

    @property
    def recorded(self) -> str:
        """What grants, keys and audit events record (accounts.clients explains the forms)."""
        if self.is_self_named:
            return self_named_record(self.client_id)
        return self.client_id if self.is_metadata_document else self.host


_LOOPBACK_OFF = "Apps running on the user's own computer (loopback clients) are turned off here."


def validate_self_name(raw: str | None, *, allow_loopback: bool) -> Client:
    """An app on the user's computer names itself: any short printable client_id (RFC 8252 apps)."""
    if not allow_loopback:
        raise _bad_client(_LOOPBACK_OFF)
    return self_named_client(raw)


def self_named_client(raw: str | None) -> Client:
    if raw is None:
        raise _bad_client("The client_id parameter is missing.")
    # isprintable() refuses controls, format characters (bidi overrides) and odd spaces.
    if not raw or len(raw) > MAX_SELF_NAME or not raw.isprintable() or raw != raw.strip():
        raise _bad_client(f"The client_id must be a name of at most {MAX_SELF_NAME} printable characters.")
    return Client(client_id=raw, is_self_named=True)


def validate_client_id(raw: str | None, *, allow_loopback: bool) -> Client:
    """The client_id is the app's hostname, IDNA-normalised to A-labels.

    A loopback hostname (`localhost`) names no website: such a client is an
    app on the user's own computer that names itself (RFC 8252 section 7.3).
    """
    if raw is None:
        raise _bad_client("The client_id parameter is missing.")
    if raw.lower() in LOOPBACK_HOSTS:
        return validate_self_name(raw, allow_loopback=allow_loopback)
    if any(c in raw for c in "/:@?#[]\\%") or any(c.isspace() for c in raw):
        raise _bad_client("The client_id must be a hostname such as yourapp.com.")
    try:
        host = ascii_host(raw)
    except ValueError:
        raise _bad_client("The client_id is not a valid hostname.") from None
    labels = host.split(".")
    if (
        len(host) > MAX_CLIENT_ID
        or len(labels) < 2
        or not all(_LABEL.fullmatch(label) for label in labels)
        or labels[-1].isdigit()  # an IPv4 address is not an app's hostname
    ):
        raise _bad_client("The client_id must be a hostname such as yourapp.com.")
    return Client(client_id=raw, host=host)


# --- Redirect URIs --------------------------------------------------------------

# RFC 3986 characters only: no whitespace, controls, backslashes, quotes, raw
# non-ASCII. Browsers and Python's parser disagree on anything else.
_URI_CHARS = re.compile(r"[A-Za-z0-9\-._~:/?\[\]@!$&'()*+,;=%]*")
_BAD_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")
_HTTP_URI = re.compile(r"(?P<scheme>https?)://(?P<authority>[^/?]*)(?P<rest>[/?].*)?", re.DOTALL)
_AUTHORITY = re.compile(r"(?P<host>\[[0-9a-fA-F:.]+\]|[^:\[\]]+)(?::(?P<port>[0-9]{1,5}))?")


@dataclass(frozen=True)
class _UriParts:
    scheme: str
    host: str  # lower-case
    path: str


def _split_uri(raw: str) -> _UriParts:
    """String checks first, then a strict split: no parser guesses (DESIGN.md)."""
    if not _URI_CHARS.fullmatch(raw) or _BAD_PERCENT.search(raw):
        raise _bad_client(
            "The redirect_uri must be plain ASCII without spaces, control characters, "
            "backslashes or broken percent-encodings."
        )
    if "#" in raw:
        raise _bad_client("The redirect_uri must not contain a fragment.")
    match = _HTTP_URI.fullmatch(raw)
    if not match:
        raise _bad_client("The redirect_uri must be an absolute https:// URL.")
    authority = match["authority"]
    if "@" in authority:
        raise _bad_client("The redirect_uri must not contain a user name or password.")
    parts = _AUTHORITY.fullmatch(authority)
    if not parts or (parts["port"] is not None and not 0 < int(parts["port"]) < 65536):
        raise _bad_client("The redirect_uri has an invalid host or port.")
    path = (match["rest"] or "").split("?", 1)[0]
    if any(segment.lower().replace("%2e", ".") in (".", "..") for segment in path.split("/")):
        raise _bad_client("The redirect_uri must not contain . or .. path segments.")
    return _UriParts(scheme=match["scheme"], host=parts["host"].lower(), path=path)


def validate_redirect_uri(raw: str | None, client: Client, *, allow_loopback: bool = True) -> str:
    """DESIGN.md: an absolute https URL on the client's host, or a loopback one for an app
    that names itself, checked as a string.

    Returns `raw` unchanged: the caller redirects to exactly the string that
    was validated, never to one rebuilt by a parser (RFC 9700 section 4.1).
    `allow_loopback` is the operators' switch for apps on the user's own
    computer (RFC 8252); it also covers metadata-document clients that
    redirect to a loopback address.
    """
    if raw is None:
        raise _bad_client("The redirect_uri parameter is missing.")
    parts = _split_uri(raw)
    if client.is_metadata_document:
        # The document lists the redirect URIs: exact string match (RFC 9700 2.1).
        if raw not in client.redirect_uris:
            raise _bad_client("The redirect_uri is not one of those in the client's metadata document.")
        if parts.host in LOOPBACK_HOSTS:
            if not allow_loopback:
                raise _bad_client(_LOOPBACK_OFF)
            return raw
        if parts.scheme == "https" and parts.host == client.host:
            return raw
        raise _bad_client("The redirect_uri must be on the client's own host, or a loopback address.")
    if client.is_self_named:
        # RFC 8252 7.3: any port, and http as well as https, on the user's own computer.
        if parts.host not in LOOPBACK_HOSTS:
            raise _bad_client(
                "An app that is not a website must come back to a loopback address (localhost, 127.0.0.1 or [::1])."
            )
        return raw
    if parts.scheme != "https":
        raise _bad_client("The redirect_uri must use https:// (http:// is only for apps on the user's computer).")
    if parts.host != client.host:
        raise _bad_client("The redirect_uri must be on the client's own host (the client_id).")
    return raw


def redirects_to_loopback(redirect_uri: str) -> bool:
    try:
        return _split_uri(redirect_uri).host in LOOPBACK_HOSTS
    except OAuthError:
        return False


def with_query(redirect_uri: str, params: Mapping[str, str]) -> str:
    """Append response parameters, keeping the URI's own query (RFC 6749 section 3.1.2)."""
    if "?" not in redirect_uri:
        separator = "?"
    elif redirect_uri.endswith(("?", "&")):
        separator = ""
    else:
        separator = "&"
    return redirect_uri + separator + urlencode(params)


# --- Scope, PKCE ----------------------------------------------------------------------


def parse_scope(raw: str | None) -> str:
    """Space-delimited scope (RFC 6749 section 3.3); omitted means key:read."""
    if raw is None:
        return SCOPE_KEY_READ
    tokens = [t for t in raw.split(" ") if t]
    if not tokens or any(t not in SUPPORTED_SCOPES for t in tokens):
        raise OAuthError("invalid_scope", f"The only scope offered is {SCOPE_KEY_READ}.")
    return SCOPE_KEY_READ


_S256_CHALLENGE = re.compile(r"[A-Za-z0-9_-]{43}")
_VERIFIER = re.compile(r"[A-Za-z0-9\-._~]{43,255}")


def s256_challenge(verifier: str) -> str:
    """BASE64URL(SHA256(ASCII(verifier))) without padding (RFC 7636 section 4.2)."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def pkce_verify(verifier: str | None, challenge: str) -> bool:
    """RFC 7636 section 4.6, compared in constant time."""
    if verifier is None or not _VERIFIER.fullmatch(verifier):
        return False
    return hmac.compare_digest(s256_challenge(verifier), challenge)


# --- Client ID Metadata Documents (MCP authorization, 2025-11-25) ---------------------------

MAX_METADATA_URL = 255  # grants record it; longer URLs are refused
MAX_CLIENT_NAME = 100
MAX_REDIRECT_URIS = 10


def validate_metadata_document_url(raw: str, *, allow_insecure: bool = False) -> _UriParts:
    """An https URL with a path, no fragment, no dot segments, no userinfo."""
    try:
        parts = _split_uri(raw)
    except OAuthError:
        raise _bad_client("The client_id URL is not a valid https URL.") from None
    if len(raw) > MAX_METADATA_URL:
        raise _bad_client("The client_id URL is too long.")
    if parts.scheme != "https" and not allow_insecure:
        raise _bad_client("A client_id URL must use https://.")
    if parts.path in ("", "/"):
        raise _bad_client("A client_id URL must have a path (it names a metadata document).")
    return parts


def client_from_metadata_document(url: str, document: Mapping[str, Any], *, host: str) -> Client:
    """Validate a fetched metadata document; its client_id must be its own URL."""
    if document.get("client_id") != url:
        raise _bad_client("The client's metadata document names another client_id.")
    uris = document.get("redirect_uris")
    if (
        not isinstance(uris, list)
        or not uris
        or len(uris) > MAX_REDIRECT_URIS
        or not all(isinstance(u, str) and len(u) <= MAX_REDIRECT_URI for u in uris)
    ):
        raise _bad_client("The client's metadata document has no valid redirect_uris.")
    method = document.get("token_endpoint_auth_method", "none")
    if method != "none":
        raise _bad_client("Only public clients (token_endpoint_auth_method none) are supported.")
    name = document.get("client_name")
    if not isinstance(name, str) or _has_control_chars(name):
        name = ""
    # Bidirectional and other format characters (U+202E, U+2066-2069, ...) could
    # reorder the consent sentence around the name: they are dropped (and the
    # page isolates the name, <bdi>).
    name = " ".join(without_format_characters(name).split())[:MAX_CLIENT_NAME]
    return Client(
        client_id=url,
        host=host,
        name=name,
        redirect_uris=tuple(uris),
        is_metadata_document=True,
    )


# --- Resource indicators (RFC 8707) ----------------------------------------------------------

MAX_RESOURCES = 5


def resource_allowed(resource: str, allowed: Sequence[str]) -> bool:
    """Equal to a configured resource, or below one at a path boundary."""
    value = resource.rstrip("/")
    for configured in allowed:
        base = configured.rstrip("/")
        if value == base or value.startswith(base + "/"):
            return True
    return False


def parse_resources(params: Params, *, allowed: Sequence[str]) -> tuple[str, ...]:
    """RFC 8707 section 2: absolute URIs without a fragment; the ones we serve.

    A key is the user's key whatever the resource, so a resource the
    provider does not serve (the reference CLI names its own loopback
    origin) is left out rather than refused: it is neither recorded nor
    reported as an audience (docs/decisions.md). Malformed ones are refused.
    """
    values = [v for v in params.get("resource", ()) if v != ""]
    if len(values) > MAX_RESOURCES:
        raise OAuthError("invalid_target", "Too many resource parameters.")
    for value in values:
        if (
            len(value) > MAX_REDIRECT_URI
            or "#" in value
            or not _URI_CHARS.fullmatch(value)
            or not re.fullmatch(r"[a-z][a-z0-9+.-]*://[^/?#]+.*", value, re.DOTALL)
        ):
            raise OAuthError("invalid_target", "A resource must be an absolute URI without a fragment.")
    return tuple(dict.fromkeys(v for v in values if resource_allowed(v, allowed)))


# --- Authorization request (RFC 6749 section 4.1.1) ----------------------------------------


@dataclass(frozen=True)
class AuthorizationRequest:
    client: Client
    redirect_uri: str
    scope: str
    code_challenge: str
    state: str | None = None
    resources: tuple[str, ...] = ()

    @property
    def redirects_to_loopback(self) -> bool:
        return redirects_to_loopback(self.redirect_uri)

    def as_params(self) -> dict[str, list[str]]:
        """The request as query parameters, to validate again later."""
        params = {
            "client_id": [self.client.client_id],
            "redirect_uri": [self.redirect_uri],
            "response_type": ["code"],
            "scope": [self.scope],
            "code_challenge": [self.code_challenge],
            "code_challenge_method": ["S256"],
            "resource": list(self.resources),
        }
        if self.state is not None:
            params["state"] = [self.state]
        return params


def parse_client(
    params: Params,
    *,
    allow_loopback: bool,
    resolve_metadata_client: Callable[[str], Client] | None = None,
) -> Client:
    """The client_id: checked first of all (DESIGN.md "Errors").

    `resolve_metadata_client` turns a metadata document URL into a Client
    (it fetches, raising OAuthError when the document is unusable); without
    it such a URL is refused like any other non-hostname.
    """
    raw = single_param(params, "client_id", max_length=MAX_REDIRECT_URI)
    if raw is not None and is_document_url(raw):
        # A URL names a metadata document, never an app's own name.
        if resolve_metadata_client:
            return resolve_metadata_client(raw)
        return validate_client_id(raw, allow_loopback=allow_loopback)
    # Which kind of client this is shows in its redirect URI (checked next, on its own).
    redirect_uris = params.get("redirect_uri", ())
    if len(redirect_uris) == 1 and redirects_to_loopback(redirect_uris[0]):
        return validate_self_name(raw, allow_loopback=allow_loopback)
    if raw is not None and len(raw) > MAX_CLIENT_ID:
        raise _bad_client("The client_id parameter is too long.")
    return validate_client_id(raw, allow_loopback=allow_loopback)


def parse_redirect_uri(params: Params, client: Client, *, allow_loopback: bool = True) -> str:
    """The redirect_uri: checked second, against the client."""
    raw = single_param(params, "redirect_uri", max_length=MAX_REDIRECT_URI)
    return validate_redirect_uri(raw, client, allow_loopback=allow_loopback)


def usable_state(params: Params) -> str | None:
    """The state to echo with an error report; None when the state itself is at fault."""
    try:
        return single_param(params, "state", max_length=MAX_STATE)
    except OAuthError:
        return None


def parse_authorization_request(
    params: Params, *, client: Client, redirect_uri: str, allowed_resources: Sequence[str] = ()
) -> AuthorizationRequest:
    """The rest of the request, once client and redirect_uri are valid (RFC 6749 4.1.1, RFC 7636 4.3)."""
    state = single_param(params, "state", max_length=MAX_STATE)
    response_type = single_param(params, "response_type", max_length=MAX_SHORT)
    scope_raw = single_param(params, "scope", max_length=MAX_SCOPE)
    challenge = single_param(params, "code_challenge", max_length=MAX_SHORT)
    method = single_param(params, "code_challenge_method", max_length=MAX_SHORT)
    if response_type is None:
        raise OAuthError("invalid_request", "The response_type parameter is missing.")
    if response_type != "code":
        raise OAuthError("unsupported_response_type", "Only response_type=code is supported.")
    scope = parse_scope(scope_raw)
    if challenge is None:
        raise OAuthError("invalid_request", "PKCE is required: the code_challenge parameter is missing.")
    if method != "S256":
        raise OAuthError("invalid_request", "PKCE is required with code_challenge_method=S256.")
    if not _S256_CHALLENGE.fullmatch(challenge):
        raise OAuthError("invalid_request", "The code_challenge is not a base64url SHA-256 value.")
    return AuthorizationRequest(
        client=client,
        redirect_uri=redirect_uri,
        scope=scope,
        code_challenge=challenge,
        state=state,
        resources=parse_resources(params, allowed=allowed_resources),
    )


# --- Device authorization request (RFC 8628 section 3.1) ---------------------------------------

# Section 6.1: letters without vowels (no words) and without look-alikes, case-insensitive.
USER_CODE_ALPHABET = "BCDFGHJKLMNPQRSTVWXZ"
USER_CODE_LENGTH = 8  # 20**8 is about 2**34.6; wrong entries are throttled (section 5.1)


@dataclass(frozen=True)
class DeviceAuthorizationRequest:
    client: Client
    scope: str
    resources: tuple[str, ...] = ()


def parse_device_authorization_request(
    params: Params, *, allowed_resources: Sequence[str] = ()
) -> DeviceAuthorizationRequest:
    """The device's request: its client_id, scope and resources (sections 3.1, RFC 8707).

    Without a redirect nothing proves who the client is, so its client_id is
    taken for what it is: a name the device gives itself (DESIGN.md).
    """
    return DeviceAuthorizationRequest(
        client=self_named_client(single_param(params, "client_id", max_length=MAX_REDIRECT_URI)),
        scope=parse_scope(single_param(params, "scope", max_length=MAX_SCOPE)),
        resources=parse_resources(params, allowed=allowed_resources),
    )


def new_user_code() -> str:
    return "".join(secrets.choice(USER_CODE_ALPHABET) for _ in range(USER_CODE_LENGTH))


def format_user_code(code: str) -> str:
    """As people read it: BCDF-GHJK."""
    half = USER_CODE_LENGTH // 2
    return f"{code[:half]}-{code[half:]}"


def normalize_user_code(typed: str) -> str | None:
    """What a person typed, as a user code (case, dashes and spaces do not matter); None if it is none."""
    letters = "".join(c for c in typed.upper() if c != "-" and not c.isspace())
    if len(letters) != USER_CODE_LENGTH or any(c not in USER_CODE_ALPHABET for c in letters):
        return None
    return letters


# --- Token request (RFC 6749 section 4.1.3) -------------------------------------------------


@dataclass(frozen=True)
class TokenRequest:
    code: str
    client_id: str
    redirect_uri: str
    code_verifier: str | None
    resources: tuple[str, ...] = ()


@dataclass(frozen=True)
class DeviceTokenRequest:
    device_code: str
    client_id: str


def parse_token_request(params: Params, *, allowed_resources: Sequence[str] = ()) -> TokenRequest | DeviceTokenRequest:
    """Shape checks only; whether the code fits is the redemption's business.

    Two grants: the authorization code (RFC 6749 4.1.3) and the device code
    (RFC 8628 section 3.4).
    """
    grant_type = single_param(params, "grant_type", max_length=MAX_SHORT)
    if grant_type is None:
        raise OAuthError("invalid_request", "The grant_type parameter is missing.")
    if grant_type == GRANT_TYPE_DEVICE_CODE:
        return DeviceTokenRequest(
            device_code=_required(params, "device_code", max_length=MAX_CODE),
            client_id=_required(params, "client_id", max_length=MAX_REDIRECT_URI),
        )
    if grant_type != GRANT_TYPE_AUTHORIZATION_CODE:
        raise OAuthError(
            "unsupported_grant_type",
            f"Supported grant types: {GRANT_TYPE_AUTHORIZATION_CODE}, {GRANT_TYPE_DEVICE_CODE}.",
        )
    code = single_param(params, "code", max_length=MAX_CODE)
    client_id = single_param(params, "client_id", max_length=MAX_REDIRECT_URI)
    redirect_uri = single_param(params, "redirect_uri", max_length=MAX_REDIRECT_URI)
    verifier = single_param(params, "code_verifier", max_length=MAX_VERIFIER)
    for name, value in (("code", code), ("client_id", client_id), ("redirect_uri", redirect_uri)):
        if value is None:
            raise OAuthError("invalid_request", f"The {name} parameter is missing.")
    resources = parse_resources(params, allowed=allowed_resources)
    return TokenRequest(
        code=code, client_id=client_id, redirect_uri=redirect_uri, code_verifier=verifier, resources=resources
    )


def _required(params: Params, name: str, *, max_length: int) -> str:
    value = single_param(params, name, max_length=max_length)
    if value is None:
        raise OAuthError("invalid_request", f"The {name} parameter is missing.")
    return value


def hash_secret(secret: str) -> str:
    """What is stored of a code or a resource-server secret: a leaked database holds neither."""
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


# --- Dynamic client registration (RFC 7591) -------------------------------------------------


def _host_of(uri: str) -> str:
    try:
        return _split_uri(uri).host
    except OAuthError as exc:
        raise OAuthError("invalid_redirect_uri", exc.description) from None


def register_client(metadata: Any, *, allow_loopback: bool) -> dict[str, Any]:
    """Stateless registration (RFC 7591): the same request always gets the same answer.

    A client of the authorization code grant is its redirect URIs' common
    host. A client of the device grant alone (no redirect) names itself:
    its client_name, which the consent page shows as unverified. Requested
    metadata we do not support (client secrets, refresh tokens) is replaced
    by what we do support, as section 3.2.1 allows.
    """
    if not isinstance(metadata, dict):
        raise OAuthError("invalid_client_metadata", "The body must be a JSON object.")
    grant_types = metadata.get("grant_types", [GRANT_TYPE_AUTHORIZATION_CODE])
    if not isinstance(grant_types, list):
        raise OAuthError("invalid_client_metadata", "grant_types must be a list.")
    offered = [g for g in (GRANT_TYPE_AUTHORIZATION_CODE, GRANT_TYPE_DEVICE_CODE) if g in grant_types]
    if not offered:
        raise OAuthError(
            "invalid_client_metadata",
            f"The grants offered are {GRANT_TYPE_AUTHORIZATION_CODE} and {GRANT_TYPE_DEVICE_CODE}.",
        )
    registered = {"token_endpoint_auth_method": "none", "grant_types": offered, "scope": SCOPE_KEY_READ}
    if GRANT_TYPE_AUTHORIZATION_CODE not in offered:
        return {"client_id": _device_client_name(metadata.get("client_name")), **registered, "response_types": []}
    response_types = metadata.get("response_types", ["code"])
    if not isinstance(response_types, list) or "code" not in response_types:
        raise OAuthError("invalid_client_metadata", "Only response_type code is offered.")
    client, uris = _registered_redirects(metadata.get("redirect_uris"), allow_loopback=allow_loopback)
    client_id = client.client_id if client.is_self_named else client.host
    return {"client_id": client_id, "redirect_uris": uris, **registered, "response_types": ["code"]}


def _registered_redirects(uris: Any, *, allow_loopback: bool) -> tuple[Client, list[str]]:
    """The client whose redirect URIs these are: all on one host, each valid for it."""
    if not isinstance(uris, list) or not uris or not all(isinstance(u, str) for u in uris):
        raise OAuthError("invalid_redirect_uri", "redirect_uris must be a non-empty list of URLs.")
    if len(uris) > MAX_REDIRECT_URIS or any(len(u) > MAX_REDIRECT_URI for u in uris):
        raise OAuthError("invalid_redirect_uri", "Too many or too long redirect_uris.")
    hosts = {_host_of(u) for u in uris}
    if len(hosts) != 1:
        raise OAuthError("invalid_redirect_uri", "All redirect_uris must be on one host (the client_id).")
    try:
        client = validate_client_id(hosts.pop(), allow_loopback=allow_loopback)
        for uri in uris:
            validate_redirect_uri(uri, client)
    except OAuthError as exc:  # RFC 7591 section 3.2.2 names this error differently
        raise OAuthError("invalid_redirect_uri", exc.description) from None
    return client, list(dict.fromkeys(uris))


def _device_client_name(client_name: Any) -> str:
    """The client_id of a device-only client: its own name, made printable and short."""
    if not isinstance(client_name, str):
        client_name = ""
    name = " ".join("".join(c for c in client_name if c.isprintable()).split())[:MAX_SELF_NAME].strip()
    return name or "unnamed device app"


# --- Blocked clients (the operator's kill switch) ------------------------------------------

BLOCK_HOST = "host"  # a website's hostname, and metadata documents published on that host
BLOCK_DOMAIN = "domain"  # a domain, all its subdomains, and metadata documents on any of them
BLOCK_DOCUMENT = "document"  # one client metadata document URL
BLOCK_NAME = "name"  # a name apps give themselves: verified by nothing, so easily changed


def block_pattern(kind: str, raw: str) -> str:
    """What a block of `kind` records for what an operator typed; ValueError with a sentence if unusable.

    Hostnames and domains are stored as grants record hosts (IDNA A-labels),
    a document URL exactly as apps send it, an app's own name with the mark
    grants record (accounts.clients). Loopback names (`localhost`) are not
    blocked here: OAUTH_ALLOW_LOOPBACK_CLIENTS turns all such apps off.
    """
    raw = raw.strip()
    if kind in (BLOCK_HOST, BLOCK_DOMAIN):
        if raw.lower() in LOOPBACK_HOSTS:
            raise ValueError("localhost is not a website; OAUTH_ALLOW_LOOPBACK_CLIENTS turns local apps off.")
        if is_document_url(raw):
            raise ValueError("Type the hostname alone (e.g. evil.example), not a URL.")
        try:
            return validate_client_id(raw, allow_loopback=False).host
        except OAuthError:
            raise ValueError("Not a hostname such as evil.example.") from None
    if kind == BLOCK_DOCUMENT:
        try:
            validate_metadata_document_url(raw)
        except OAuthError:
            raise ValueError("Not a client metadata document URL (https, with a path).") from None
        return raw
    if kind == BLOCK_NAME:
        if raw.lower() in LOOPBACK_HOSTS:
            raise ValueError(f"“{raw}” is a loopback name; OAUTH_ALLOW_LOOPBACK_CLIENTS turns local apps off.")
        try:
            return self_named_client(raw).recorded
        except OAuthError:
            raise ValueError(f"A name of at most {MAX_SELF_NAME} printable characters.") from None
    raise ValueError("Choose what kind of client to block.")


def _host_of_document(url: str) -> str | None:
    try:
        return _split_uri(url).host
    except OAuthError:
        return None


def block_candidates(recorded: str) -> list[tuple[str, str]]:
    """Every (kind, pattern) of a block that covers the client grants record as `recorded`.

    A website is covered by a block of its host or of any domain above it; a
    metadata document by a block of its URL, of its host or of a domain
    above that; an app that names itself only by a block of that very name
    (a website's block never covers a local app that calls itself so).
    """
    if recorded.startswith(SELF_NAMED_MARK):
        return [(BLOCK_NAME, recorded)]
    if recorded in LOOPBACK_HOSTS:
        return []
    candidates = []
    host: str | None = recorded
    if is_document_url(recorded):
        candidates.append((BLOCK_DOCUMENT, recorded))
        host = _host_of_document(recorded)
    if host:
        candidates.append((BLOCK_HOST, host))
        labels = host.split(".")
        candidates += [(BLOCK_DOMAIN, ".".join(labels[i:])) for i in range(len(labels) - 1)]
    return candidates


def block_covers(kind: str, pattern: str, recorded: str) -> bool:
    """Whether a block of `kind` and `pattern` covers the client recorded as `recorded`."""
    return (kind, pattern) in block_candidates(recorded)
