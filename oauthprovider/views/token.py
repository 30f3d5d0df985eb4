"""POST /getKeys/token: the code exchange (RFC 6749 4.1.3, RFC 7636 4.6)."""

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse, JsonResponse

from accounts.audit import RequestContext, client_ip
from oauthprovider.http import form_params, no_store, oauth_error_response, public_cors
from oauthprovider.protocol import OAuthError, parse_token_request
from oauthprovider.services import code_redeem


def _failure_key(request: HttpRequest) -> str:
    return f"oauth:token-failures:{client_ip(request) or 'unknown'}"


def _throttled(request: HttpRequest) -> bool:
    return (cache.get(_failure_key(request)) or 0) >= settings.OAUTH_TOKEN_FAILURES_PER_ADDRESS


def _count_failure(request: HttpRequest) -> None:
    key = _failure_key(request)
    cache.add(key, 0, timeout=settings.OAUTH_TOKEN_FAILURE_WINDOW_SECONDS)
    try:
        cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.set(key, 1, timeout=settings.OAUTH_TOKEN_FAILURE_WINDOW_SECONDS)


@public_cors(methods=["POST"])
def token(request: HttpRequest) -> HttpResponse:
    if _throttled(request):
        retry = settings.OAUTH_TOKEN_FAILURE_WINDOW_SECONDS
        return oauth_error_response(
            OAuthError(
                "slow_down",
                f"Too many failed token requests from this address; retry in {retry} seconds.",
                status=429,
            ),
            headers={"Retry-After": str(retry)},
        )
    try:
        token_request = parse_token_request(form_params(request), allowed_resources=settings.OAUTH_RESOURCES)
        access_token, scope = code_redeem(token_request=token_request, context=RequestContext.from_request(request))
    except OAuthError as exc:
        if exc.error == "invalid_grant":
            _count_failure(request)
        return oauth_error_response(exc)
    return no_store(JsonResponse({"access_token": access_token, "token_type": "Bearer", "scope": scope}))
