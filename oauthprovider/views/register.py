"""POST /getKeys/register: dynamic client registration (RFC 7591), stateless."""

import json

from django.conf import settings
from django.http import HttpRequest, JsonResponse

from oauthprovider.http import no_store, public_cors
from oauthprovider.protocol import RegistrationError, register_client

MAX_BODY = 16 * 1024


def _error(exc: RegistrationError) -> JsonResponse:
    return no_store(JsonResponse(exc.as_dict(), status=400))


@public_cors(methods=["POST"])
def register(request: HttpRequest) -> JsonResponse:
    if (request.content_type or "").lower() != "application/json":
        return _error(RegistrationError("invalid_client_metadata", "The body must be application/json."))
    if int(request.META.get("CONTENT_LENGTH") or 0) > MAX_BODY:
        return _error(RegistrationError("invalid_client_metadata", "The body is too large."))
    try:
        metadata = json.loads(request.body)
    except (ValueError, UnicodeDecodeError):
        return _error(RegistrationError("invalid_client_metadata", "The body is not valid JSON."))
    try:
        registered = register_client(metadata, allow_loopback=settings.OAUTH_ALLOW_LOOPBACK_CLIENTS)
    except RegistrationError as exc:
        return _error(exc)
    return no_store(JsonResponse(registered, status=201))
