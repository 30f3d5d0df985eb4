"""POST /getKeys/register: dynamic client registration (RFC 7591), stateless."""

import json

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.debug import sensitive_post_parameters

from oauthprovider.http import allow_methods, no_store, oauth_error_response, public_cors
from oauthprovider.protocol import OAuthError, register_client

MAX_BODY = 16 * 1024


@csrf_exempt  # no cookie is read here, so there is nothing to forge
@public_cors(methods=["POST"])
@allow_methods("POST")
@sensitive_post_parameters()  # the body is JSON; any form field sent anyway stays out of reports
def register(request: HttpRequest) -> JsonResponse:
    try:
        if (request.content_type or "").lower() != "application/json":
            raise OAuthError("invalid_client_metadata", "The body must be application/json.")
        if int(request.META.get("CONTENT_LENGTH") or 0) > MAX_BODY:
            raise OAuthError("invalid_client_metadata", "The body is too large.")
        try:
            metadata = json.loads(request.body)
        except (ValueError, UnicodeDecodeError, RecursionError):  # 16,000 "[" exhaust the parser's stack
            raise OAuthError("invalid_client_metadata", "The body is not valid JSON.") from None
        registered = register_client(metadata, allow_loopback=settings.OAUTH_ALLOW_LOOPBACK_CLIENTS)
    except OAuthError as exc:
        return oauth_error_response(exc)
    return no_store(JsonResponse(registered, status=201))
