"""GET /v1/me: the built-in protected API that proves a key works.

Keys are checked by hash lookup only (no decryption, no slow hash) and
last-used times are written at most once a minute per key.
"""

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from accounts import limits
from accounts.audit import client_ip
from accounts.models import ApiKey
from accounts.services import key_touch
from oauthprovider.http import allow_methods, no_store, public_cors


def presented_key(request: HttpRequest) -> str | None:
    """The key from `x-api-key`, or from `Authorization: Bearer` (RFC 6750 section 2.1)."""
    header = request.headers.get("X-Api-Key")
    if header:
        return header.strip()
    scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip()
    return None


def _challenge(*, error_description: str | None) -> str:
    """RFC 6750 section 3, with RFC 9728 section 5.1's resource_metadata for discovery."""
    parts = [
        'realm="keygrant"',
        f'resource_metadata="{settings.OAUTH_ISSUER}/.well-known/oauth-protected-resource"',
        'scope="key:read"',
    ]
    if error_description:
        parts += ['error="invalid_token"', f'error_description="{error_description}"']
    return "Bearer " + ", ".join(parts)


def _unauthorized(description: str, *, invalid: bool) -> JsonResponse:
    # RFC 6750 3.1: a request without credentials gets no error code in the challenge.
    error = "invalid_token" if invalid else "unauthorized"
    challenge = _challenge(error_description=description if invalid else None)
    response = JsonResponse({"error": error, "error_description": description}, status=401)
    response["WWW-Authenticate"] = challenge
    return no_store(response)


@csrf_exempt  # no cookie is read here, so there is nothing to forge
@public_cors(methods=["GET", "HEAD"], expose=["WWW-Authenticate"])
@allow_methods("GET", "HEAD")
def me(request: HttpRequest) -> JsonResponse:
    raw = presented_key(request)
    if raw is None:
        return _unauthorized("An API key is required (x-api-key or Authorization: Bearer).", invalid=False)
    key = ApiKey.objects.for_api_call(raw)
    if key is None:
        return _unauthorized("The API key is unknown or revoked.", invalid=True)
    # The key's limits are columns of the row just read: no further query.
    address = client_ip(request)
    refusal = key.refusal(address=address)
    if refusal == limits.EXPIRED:
        return _unauthorized("The API key has expired.", invalid=True)
    if refusal == limits.ADDRESS_NOT_ALLOWED:
        return _unauthorized(f"The API key may not be used from this address ({address or 'unknown'}).", invalid=True)
    key_touch(key=key)
    name = f"{key.owner_first_name} {key.owner_last_name}".strip()  # as User.get_full_name()
    return no_store(
        JsonResponse(
            {
                "user": {"id": key.user_id, "username": key.owner_username, "name": name},
                "key": {"name": key.name, "prefix": key.prefix},
            }
        )
    )
