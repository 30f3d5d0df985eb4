"""POST /getKeys/introspect: resource servers ask whether a key is active (RFC 7662)."""

import base64
import binascii
import ipaddress
from urllib.parse import unquote

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.debug import sensitive_post_parameters

from oauthprovider import protocol
from oauthprovider.http import allow_methods, form_params, no_store, oauth_error_response
from oauthprovider.introspection import key_introspect, resource_server_authenticate
from oauthprovider.protocol import OAuthError


def _credentials(request: HttpRequest, params: protocol.Params) -> tuple[str, str] | None:
    """client_secret_basic (RFC 6749 2.3.1, form-encoded inside Basic) or client_secret_post."""
    scheme, _, encoded = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
        client_id, sep, secret = decoded.partition(":")
        return (unquote(client_id), unquote(secret)) if sep else None
    client_id = protocol.single_param(params, "client_id", max_length=protocol.MAX_SHORT)
    secret = protocol.single_param(params, "client_secret", max_length=protocol.MAX_SHORT)
    return (client_id, secret) if client_id and secret else None


def _unauthorized() -> HttpResponse:
    return oauth_error_response(
        OAuthError("invalid_client", "Resource server authentication failed.", status=401),
        headers={"WWW-Authenticate": 'Basic realm="keygrant introspection"'},
    )


@csrf_exempt  # server-to-server; authenticated by resource-server credentials, never cookies
@allow_methods("POST")
@sensitive_post_parameters("token", "client_secret")
def introspect(request: HttpRequest) -> HttpResponse:
    try:
        params = form_params(request)
        credentials = _credentials(request, params)
        server = resource_server_authenticate(client_id=credentials[0], secret=credentials[1]) if credentials else None
        if server is None:
            return _unauthorized()
        token = protocol.single_param(params, "token", max_length=protocol.MAX_CODE)
        protocol.single_param(params, "token_type_hint", max_length=protocol.MAX_SHORT)
        if token is None:
            raise OAuthError("invalid_request", "The token parameter is missing.")
        client_address = _client_address(params)
    except OAuthError as exc:
        return oauth_error_response(exc)
    return no_store(JsonResponse(key_introspect(raw_key=token, server=server, client_address=client_address)))


def _client_address(params: protocol.Params) -> str | None:
    """Where the resource server's caller is (an extension parameter, RFC 7662 2.1): for keys limited to addresses."""
    raw = protocol.single_param(params, "client_address", max_length=protocol.MAX_SHORT)
    if raw is None:
        return None
    try:
        return str(ipaddress.ip_address(raw))
    except ValueError:
        raise OAuthError("invalid_request", "The client_address parameter is not an IP address.") from None
