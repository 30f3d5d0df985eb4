"""The OAuth 2.0 rules Keygrant follows, as plain functions.

No HTTP requests and no database here: strings, mappings and dataclasses in,
dataclasses or an `OAuthError` out, so each rule can be tested (and read)
next to the RFC section it implements. See DESIGN.md for the contract.
"""

import base64
import hashlib
import hmac
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import urlencode

import idna

SCOPE_KEY_READ = "key:read"
SUPPORTED_SCOPES = (SCOPE_KEY_READ,)
GRANT_TYPE_AUTHORIZATION_CODE = "authorization_code"
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "[::1]")

# Longest value accepted per parameter; longer is `invalid_request`.
MAX_CLIENT_ID = 253  # a DNS name (RFC 1035 section 2.3.4)
MAX_REDIRECT_URI = 2000
MAX_STATE = 1024
MAX_SCOPE = 256
MAX_SHORT = 128  # response_type, code_challenge, code_challenge_method, grant_type
MAX_CODE = 256
MAX_VERIFIER = 128  # RFC 7636 section 4.1

Params = Mapping[str, Sequence[str]]


class OAuthError(Exception):
    """An OAuth error response (RFC 6749 sections 4.1.2.1 and 5.2).

    `redirectable` is False while the client or its redirect URI is unknown:
    such errors are shown to the user and never sent anywhere (RFC 6749
    4.1.2.1, first paragraph). Otherwise `redirect_uri` and `state` say
    where the error may be reported back.
    """

    def __init__(
        self,
        error: str,
        description: str,
        *,
        status: int = 400,
        redirectable: bool = True,
        redirect_uri: str | None = None,
        state: str | None = None,
    ) -> None:
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = description
        self.status = status
        self.redirectable = redirectable
        self.redirect_uri = redirect_uri
        self.state = state

    def as_dict(self) -> dict[str, str]:
        return {"error": self.error, "error_description": self.description}


def _bad_client(description: str) -> OAuthError:
    return OAuthError("invalid_request", description, redirectable=False)


# --- Parameters ----------------------------------------------------------------


def single_param(params: Params, name: str, *, max_length: int, redirectable: bool = True) -> str | None:
    """One value of `name`, or None when absent or empty (RFC 6749 section 3.1).

    Parameters must not be repeated (section 3.1); values longer than
    `max_length` or carrying control characters are refused before they can
    reach a template, a log line or a database column.
    """
    given = params.get(name, ())
    values = [v for v in given if v != ""]
    if len(given) > 1:
        raise OAuthError("invalid_request", f"The {name} parameter is repeated.", redirectable=redirectable)
    if not values:
        return None
    value = values[0]
    if len(value) > max_length:
        raise OAuthError("invalid_request", f"The {name} parameter is too long.", redirectable=redirectable)
    if _has_control_chars(value):
        raise OAuthError(
            "invalid_request", f"The {name} parameter contains control characters.", redirectable=redirectable
        )
    return value


def _has_control_chars(value: str) -> bool:
    return any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in value)


# --- Clients -------------------------------------------------------------------

_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)")


@dataclass(frozen=True)
class Client:
    """A client app, identified by its hostname (DESIGN.md "Clients")."""

    client_id: str  # exactly as the app sent it
    host: str  # lower-case, IDNA A-labels: what redirect URIs must match
    display_host: str  # Unicode form, for people
    is_loopback: bool = False

    @property
    def is_idn(self) -> bool:
        return self.display_host != self.host


def validate_client_id(raw: str | None, *, allow_loopback: bool) -> Client:
    """The client_id is the app's hostname, IDNA-normalised to A-labels."""
    if raw is None:
        raise _bad_client("The client_id parameter is missing.")
    lowered = raw.lower()
    if lowered in LOOPBACK_HOSTS:
        if not allow_loopback:
            raise _bad_client("Apps running on the user's own computer (loopback clients) are turned off here.")
        return Client(client_id=raw, host=lowered, display_host=lowered, is_loopback=True)
    if any(c in raw for c in "/:@?#[]\\%") or any(c.isspace() for c in raw):
        raise _bad_client("The client_id must be a hostname such as yourapp.com.")
    try:
        host = idna.encode(raw, uts46=True, std3_rules=True, transitional=False).decode("ascii").lower()
    except (idna.IDNAError, UnicodeError, ValueError):
        raise _bad_client("The client_id is not a valid hostname.") from None
    labels = host.split(".")
    if (
        len(host) > MAX_CLIENT_ID
        or len(labels) < 2
        or not all(_LABEL.fullmatch(label) for label in labels)
        or labels[-1].isdigit()  # an IPv4 address is not an app's hostname
    ):
        raise _bad_client("The client_id must be a hostname such as yourapp.com.")
    try:
        display = idna.decode(host)
    except (idna.IDNAError, UnicodeError, ValueError):
        display = host
    return Client(client_id=raw, host=host, display_host=display)


# --- Redirect URIs --------------------------------------------------------------

# RFC 3986 characters only: no whitespace, controls, backslashes, quotes, raw
# non-ASCII. Browsers and Python's parser disagree on anything else.
_URI_CHARS = re.compile(r"[A-Za-z0-9\-._~:/?\[\]@!$&'()*+,;=%]*")
_BAD_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")
_HTTP_URI = re.compile(r"(?P<scheme>https?)://(?P<authority>[^/?]*)(?P<rest>[/?].*)?", re.DOTALL)
_AUTHORITY = re.compile(r"(?P<host>\[[0-9a-fA-F:.]+\]|[^:\[\]]+)(?::(?P<port>[0-9]{1,5}))?")


def validate_redirect_uri(raw: str | None, client: Client) -> str:
    """DESIGN.md: an absolute https URL on the client's host, checked as a string.

    Returns `raw` unchanged: the caller redirects to exactly the string that
    was validated, never to one rebuilt by a parser (RFC 9700 section 4.1).
    """
    if raw is None:
        raise _bad_client("The redirect_uri parameter is missing.")
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
    if match["scheme"] != "https" and not client.is_loopback:
        raise _bad_client("The redirect_uri must use https:// (http:// is only for loopback apps).")
    authority = match["authority"]
    if "@" in authority:
        raise _bad_client("The redirect_uri must not contain a user name or password.")
    parts = _AUTHORITY.fullmatch(authority)
    if not parts or (parts["port"] is not None and not 0 < int(parts["port"]) < 65536):
        raise _bad_client("The redirect_uri has an invalid host or port.")
    if parts["host"].lower() != client.host:
        raise _bad_client("The redirect_uri must be on the client's own host (the client_id).")
    path = (match["rest"] or "").split("?", 1)[0]
    if any(segment.lower().replace("%2e", ".") in (".", "..") for segment in path.split("/")):
        raise _bad_client("The redirect_uri must not contain . or .. path segments.")
    return raw


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
_VERIFIER = re.compile(r"[A-Za-z0-9\-._~]{43,128}")


def s256_challenge(verifier: str) -> str:
    """BASE64URL(SHA256(ASCII(verifier))) without padding (RFC 7636 section 4.2)."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def pkce_verify(verifier: str | None, challenge: str) -> bool:
    """RFC 7636 section 4.6, compared in constant time."""
    if verifier is None or not _VERIFIER.fullmatch(verifier):
        return False
    return hmac.compare_digest(s256_challenge(verifier), challenge)


# --- Authorization request (RFC 6749 section 4.1.1) ----------------------------------------


@dataclass(frozen=True)
class AuthorizationRequest:
    client: Client
    redirect_uri: str
    scope: str
    code_challenge: str
    state: str | None = None

    def as_params(self) -> dict[str, str]:
        """The request as query parameters, to validate again later."""
        params = {
            "client_id": self.client.client_id,
            "redirect_uri": self.redirect_uri,
            "response_type": "code",
            "scope": self.scope,
            "code_challenge": self.code_challenge,
            "code_challenge_method": "S256",
        }
        if self.state is not None:
            params["state"] = self.state
        return params


def parse_authorization_request(params: Params, *, allow_loopback: bool) -> AuthorizationRequest:
    """Validate in DESIGN.md's order: client_id, redirect_uri, then the rest."""
    client = validate_client_id(
        single_param(params, "client_id", max_length=MAX_CLIENT_ID, redirectable=False),
        allow_loopback=allow_loopback,
    )
    redirect_uri = validate_redirect_uri(
        single_param(params, "redirect_uri", max_length=MAX_REDIRECT_URI, redirectable=False), client
    )
    # From here on an error can be reported back to the app (with state, if usable).
    try:
        state = single_param(params, "state", max_length=MAX_STATE)
    except OAuthError as exc:
        exc.redirect_uri = redirect_uri
        raise
    try:
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
    except OAuthError as exc:
        exc.redirect_uri, exc.state = redirect_uri, state
        raise
    return AuthorizationRequest(
        client=client, redirect_uri=redirect_uri, scope=scope, code_challenge=challenge, state=state
    )


# --- Token request (RFC 6749 section 4.1.3) -------------------------------------------------


@dataclass(frozen=True)
class TokenRequest:
    code: str
    client_id: str
    redirect_uri: str
    code_verifier: str | None


def parse_token_request(params: Params) -> TokenRequest:
    """Shape checks only; whether the code fits is the redemption's business."""
    grant_type = single_param(params, "grant_type", max_length=MAX_SHORT)
    code = single_param(params, "code", max_length=MAX_CODE)
    client_id = single_param(params, "client_id", max_length=MAX_REDIRECT_URI)
    redirect_uri = single_param(params, "redirect_uri", max_length=MAX_REDIRECT_URI)
    verifier = single_param(params, "code_verifier", max_length=MAX_VERIFIER)
    if grant_type is None:
        raise OAuthError("invalid_request", "The grant_type parameter is missing.")
    if grant_type != GRANT_TYPE_AUTHORIZATION_CODE:
        raise OAuthError("unsupported_grant_type", "Only grant_type=authorization_code is supported.")
    for name, value in (("code", code), ("client_id", client_id), ("redirect_uri", redirect_uri)):
        if value is None:
            raise OAuthError("invalid_request", f"The {name} parameter is missing.")
    return TokenRequest(code=code, client_id=client_id, redirect_uri=redirect_uri, code_verifier=verifier)


def hash_code(code: str) -> str:
    """Only this hash is stored, so a leaked database holds no usable code."""
    return hashlib.sha256(code.encode("utf-8", "surrogatepass")).hexdigest()
