"""POST /getKeys/token: the code exchange (RFC 6749 4.1.3, RFC 7636 4.6) and device polling (RFC 8628 3.4)."""

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.debug import sensitive_post_parameters

from accounts import throttle
from accounts.audit import RequestContext, client_ip
from oauthprovider.device_flow import device_token
from oauthprovider.http import allow_methods, form_params, no_store, oauth_error_response, public_cors
from oauthprovider.protocol import DeviceTokenRequest, OAuthError, parse_token_request
from oauthprovider.services import code_redeem


def _failures_counter(request: HttpRequest) -> str:
    return f"oauth:token-failures:{client_ip(request) or 'unknown'}"


@csrf_exempt  # no cookie is read here, so there is nothing to forge
@public_cors(methods=["POST"])
@allow_methods("POST")
@sensitive_post_parameters("code", "code_verifier", "device_code")
def token(request: HttpRequest) -> HttpResponse:
    counter = _failures_counter(request)
    if throttle.hits(counter) >= settings.OAUTH_TOKEN_FAILURES_PER_ADDRESS:
        retry = settings.OAUTH_TOKEN_FAILURE_WINDOW_SECONDS
        return oauth_error_response(
            OAuthError(
                "slow_down",
                f"Too many failed token requests from this address; retry in {retry} seconds.",
                status=429,
            ),
            headers={"Retry-After": str(retry)},
        )
    context = RequestContext.from_request(request)
    try:
        token_request = parse_token_request(form_params(request), allowed_resources=settings.OAUTH_RESOURCES)
        if isinstance(token_request, DeviceTokenRequest):
            if not settings.OAUTH_DEVICE_FLOW_ENABLED:
                raise OAuthError("unsupported_grant_type", "The device flow is turned off here.")
            access_token, scope = device_token(token_request=token_request, context=context)
        else:
            access_token, scope = code_redeem(token_request=token_request, context=context)
    except OAuthError as exc:
        if exc.error == "invalid_grant":
            throttle.count_hit(counter, window=settings.OAUTH_TOKEN_FAILURE_WINDOW_SECONDS)
        return oauth_error_response(exc)
    return no_store(JsonResponse({"access_token": access_token, "token_type": "Bearer", "scope": scope}))
