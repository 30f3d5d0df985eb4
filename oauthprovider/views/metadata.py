"""GET /.well-known/oauth-authorization-server (RFC 8414)."""

import functools
import json

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt

from oauthprovider.http import allow_methods, public_cors
from oauthprovider.protocol import GRANT_TYPE_AUTHORIZATION_CODE, GRANT_TYPE_DEVICE_CODE, SUPPORTED_SCOPES


def authorization_server_metadata(*, issuer: str, cimd: bool, device: bool) -> dict:
    metadata = {
        "issuer": issuer,
        "authorization_endpoint": f"{issuer}/getKeys/authorize",
        "token_endpoint": f"{issuer}/getKeys/token",
        "registration_endpoint": f"{issuer}/getKeys/register",
        "revocation_endpoint": f"{issuer}/getKeys/revoke",
        "introspection_endpoint": f"{issuer}/getKeys/introspect",
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": [GRANT_TYPE_AUTHORIZATION_CODE, *([GRANT_TYPE_DEVICE_CODE] if device else [])],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["none"],
        "scopes_supported": list(SUPPORTED_SCOPES),
        "revocation_endpoint_auth_methods_supported": ["none"],
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "authorization_response_iss_parameter_supported": True,
        "client_id_metadata_document_supported": cimd,
    }
    if device:  # RFC 8628 section 4
        metadata["device_authorization_endpoint"] = f"{issuer}/getKeys/device/code"
    return metadata


@functools.cache
def _encoded(issuer: str, cimd: bool, device: bool) -> bytes:
    """The document as sent, encoded once per configuration rather than on every request."""
    return json.dumps(authorization_server_metadata(issuer=issuer, cimd=cimd, device=device)).encode()


@csrf_exempt  # no cookie is read here, so there is nothing to forge
@public_cors(methods=["GET", "HEAD"])
@allow_methods("GET", "HEAD")
def oauth_authorization_server(request: HttpRequest) -> HttpResponse:
    body = _encoded(settings.OAUTH_ISSUER, settings.OAUTH_CIMD_ENABLED, settings.OAUTH_DEVICE_FLOW_ENABLED)
    response = HttpResponse(body, content_type="application/json")
    response["Cache-Control"] = "public, max-age=300"
    return response
