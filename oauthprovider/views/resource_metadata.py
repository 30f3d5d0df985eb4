"""GET /.well-known/oauth-protected-resource[/<path>]: RFC 9728 metadata for the built-in API."""

from django.conf import settings
from django.http import Http404, HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from oauthprovider.http import allow_methods, public_cors
from oauthprovider.protocol import SUPPORTED_SCOPES

API_PREFIX = "v1"


def protected_resource_metadata(resource: str) -> dict:
    return {
        "resource": resource,
        "authorization_servers": [settings.OAUTH_ISSUER],
        "scopes_supported": list(SUPPORTED_SCOPES),
        "bearer_methods_supported": ["header"],
        "resource_name": "Keygrant API",
    }


@csrf_exempt  # no cookie is read here, so there is nothing to forge
@public_cors(methods=["GET", "HEAD"])
@allow_methods("GET", "HEAD")
def oauth_protected_resource(request: HttpRequest, suffix: str = "") -> JsonResponse:
    """The root document names the issuer's origin; the path-suffixed form names that path.

    RFC 9728 section 3.3: `resource` must equal the identifier the
    well-known URL was built from, so each form answers for its own URL.
    """
    if suffix and suffix != API_PREFIX and not suffix.startswith(API_PREFIX + "/"):
        raise Http404
    resource = settings.OAUTH_ISSUER + (f"/{suffix}" if suffix else "")
    response = JsonResponse(protected_resource_metadata(resource))
    response["Cache-Control"] = "public, max-age=300"
    return response
