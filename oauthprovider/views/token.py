"""POST /getKeys/token: the code exchange (RFC 6749 4.1.3, RFC 7636 4.6) and device polling (RFC 8628 3.4)."""

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.debug import sensitive_post_parameters

from accounts.audit import RequestContext, client_ip
from accounts.counters import address_bucket, count_hit
from oauthprovider.device_flow import device_token
from oauthprovider.http import allow_methods, form_params, no_store, oauth_error_response, public_cors
from oauthprovider.protocol import DeviceTokenRequest, OAuthError, parse_token_request
from oauthprovider.services import code_redeem


def _refusal(request: HttpRequest, exc: OAuthError) -> HttpResponse:
    """The error for a request that failed; `slow_down` once its address has failed too often.

    Every request is tried first: a request with the right verifier for a
    live code always succeeds (DESIGN.md "Authorization codes": nobody but
    the code's holder can make a valid code unusable). Only failures are
    counted, per client address, and past OAUTH_TOKEN_FAILURES_PER_ADDRESS
    in the window they are answered 429 (RFC 8628 3.5's "slow down").
    """
    bucket = address_bucket(client_ip(request))
    if exc.error != "invalid_grant" or bucket is None:
        return oauth_error_response(exc)
    window = settings.OAUTH_TOKEN_FAILURE_WINDOW_SECONDS
    if count_hit(f"oauth:token-failures:{bucket}", window=window) <= settings.OAUTH_TOKEN_FAILURES_PER_ADDRESS:
        return oauth_error_response(exc)
    slow_down = OAuthError(
        "slow_down", f"Too many failed token requests from this address; retry in {window} seconds.", status=429
    )
    return oauth_error_response(slow_down, headers={"Retry-After": str(window)})


@csrf_exempt  # no cookie is read here, so there is nothing to forge
@public_cors(methods=["POST"])
@allow_methods("POST")
@sensitive_post_parameters("code", "code_verifier", "device_code", "client_secret")
def token(request: HttpRequest) -> HttpResponse:
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
        return _refusal(request, exc)
    return no_store(JsonResponse({"access_token": access_token, "token_type": "Bearer", "scope": scope}))
