"""The device flow (RFC 8628): the device's endpoint, and the page where a person enters its code.

POST /getKeys/device/code (machine): a device asks for a device code and a
user code. GET/POST /getKeys/device (people): sign in, type the user code
(or follow verification_uri_complete), then the same consent page as the
code flow, with a warning to approve only a code one's own device shows.
"""

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.http import urlencode
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from accounts.audit import RequestContext, client_ip
from accounts.clients import ClientName
from accounts.counters import address_bucket, count_hit, hits
from oauthprovider import pending
from oauthprovider.csrf import consent_csrf_protect
from oauthprovider.device_flow import (
    device_approve,
    device_client,
    device_deny,
    device_start,
    pending_device_authorization,
)
from oauthprovider.forms import ConsentForm
from oauthprovider.http import allow_methods, form_params, no_store, oauth_error_response, public_cors
from oauthprovider.models import DeviceAuthorization
from oauthprovider.protocol import (
    OAuthError,
    format_user_code,
    normalize_user_code,
    parse_device_authorization_request,
)
from oauthprovider.services import ClientBlocked, client_block_of
from oauthprovider.views.authorize import blocked_page
from oauthprovider.views.consent import consent_page, no_referrer

WINDOW_SECONDS = {"device_requests": 600, "user_code_failures": 900}


def _enabled() -> None:
    if not settings.OAUTH_DEVICE_FLOW_ENABLED:
        raise Http404("The device flow is turned off here.")


# --- The device's endpoint ----------------------------------------------------------------


@csrf_exempt  # no cookie is read here, so there is nothing to forge
@public_cors(methods=["POST"])
@allow_methods("POST")
def device_code(request: HttpRequest) -> HttpResponse:
    """RFC 8628 sections 3.1-3.2; errors as RFC 6749 5.2."""
    _enabled()
    if _too_many_device_requests(request):
        retry = WINDOW_SECONDS["device_requests"]
        return oauth_error_response(
            OAuthError(
                "slow_down", f"Too many device sign-ins from this address; retry in {retry} seconds.", status=429
            ),
            headers={"Retry-After": str(retry)},
        )
    try:
        device_request = parse_device_authorization_request(
            form_params(request), allowed_resources=settings.OAUTH_RESOURCES
        )
        if client_block_of(device_request.client) is not None:
            raise OAuthError("unauthorized_client", "The operators of this service blocked this app.")
    except OAuthError as exc:
        return oauth_error_response(exc)
    started = device_start(request=device_request)
    verification_uri = settings.OAUTH_ISSUER + reverse("oauth:device")
    user_code = format_user_code(started.user_code)
    return no_store(
        JsonResponse(
            {
                "device_code": started.device_code,
                "user_code": user_code,
                "verification_uri": verification_uri,
                "verification_uri_complete": f"{verification_uri}?{urlencode({'user_code': user_code})}",
                "expires_in": started.expires_in,
                "interval": started.interval,
            }
        )
    )


def _too_many_device_requests(request: HttpRequest) -> bool:
    bucket = address_bucket(client_ip(request))
    if bucket is None:  # no usable address: no shared bucket (accounts.counters)
        return False
    window = WINDOW_SECONDS["device_requests"]
    return count_hit(f"oauth:device-requests:{bucket}", window=window) > settings.OAUTH_DEVICE_REQUESTS_PER_ADDRESS


# --- The person's page --------------------------------------------------------------------


def _failure_counters(request: HttpRequest) -> list[str]:
    """Wrong user codes count per person and per address (section 5.1)."""
    counters = [f"oauth:user-code-failures:user:{request.user.pk}"]
    bucket = address_bucket(client_ip(request))
    if bucket is not None:
        counters.append(f"oauth:user-code-failures:address:{bucket}")
    return counters


def _entry_page(request: HttpRequest, *, typed: str = "", error: str = "", status: int = 200) -> HttpResponse:
    return render(request, "oauthprovider/device_entry.html", {"typed": typed, "error": error}, status=status)


@csrf_exempt  # replaced by consent_csrf_protect: the consent form posts with "Origin: null"
@require_http_methods(["GET", "POST"])
@never_cache
@no_referrer
@consent_csrf_protect
def device(request: HttpRequest) -> HttpResponse:
    _enabled()
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    if request.method == "POST" and "request" in request.POST:
        return _decide(request)
    typed = (request.POST if request.method == "POST" else request.GET).get("user_code")
    if typed is None:
        return _entry_page(request)
    typed = typed[:64]
    counters = _failure_counters(request)
    if max(hits(c) for c in counters) >= settings.OAUTH_USER_CODE_FAILURES_ALLOWED:
        minutes = WINDOW_SECONDS["user_code_failures"] // 60
        response = _entry_page(
            request, typed=typed, error=f"Too many wrong codes. Try again in {minutes} minutes.", status=429
        )
        response["Retry-After"] = str(WINDOW_SECONDS["user_code_failures"])
        return response
    authorization = pending_device_authorization(typed)
    if authorization is None:
        for counter in counters:
            count_hit(counter, window=WINDOW_SECONDS["user_code_failures"])
        error = "That code is not valid, has expired or was already used. Check the code your device shows."
        return _entry_page(request, typed=typed, error=error, status=400)
    block = client_block_of(device_client(authorization))
    if block is not None:
        return blocked_page(request, block, device_client(authorization))
    user_code = format_user_code(normalize_user_code(typed))
    params = {"device": [str(authorization.pk)], "user_code": [user_code]}
    rid = pending.pending_store(user=request.user, params=params)
    return _device_consent_page(request, authorization, rid, ConsentForm(user=request.user), user_code)


def _device_consent_page(
    request: HttpRequest, authorization: DeviceAuthorization, rid: str, form: ConsentForm, user_code: str
) -> HttpResponse:
    return consent_page(
        request,
        device_client(authorization),
        rid,
        form,
        device=True,
        user_code=user_code,
        search_params={"user_code": [user_code]},
    )


def _decide(request: HttpRequest) -> HttpResponse:
    """The consent form's POST: Allow or Deny for the device whose code the person entered, once."""
    rid = request.POST.get("request", "")
    params = pending.pending_get(rid=rid, user=request.user) or {}
    authorization = DeviceAuthorization.objects.filter(pk__in=params.get("device", [])[:1]).first()
    if authorization is None or not authorization.is_pending:
        if params:
            pending.pending_take(rid=rid, user=request.user)  # it cannot become answerable again
        return _result_page(request, authorization, allowed=False, done=False)
    form = ConsentForm(request.POST, user=request.user)
    if not form.is_valid():
        return _device_consent_page(request, authorization, rid, form, params["user_code"][0])
    context = RequestContext.from_request(request)
    try:
        with transaction.atomic():
            done = pending.pending_take(rid=rid, user=request.user)
            if done and form.allowed:
                done = device_approve(
                    user=request.user,
                    authorization=authorization,
                    key=form.cleaned_data["key"],
                    context=context,
                    limits=form.cleaned_data["limits"],
                )
            elif done:
                done = device_deny(user=request.user, authorization=authorization, context=context)
    except ClientBlocked as blocked:  # blocked while the page was open: nothing was written
        pending.pending_take(rid=rid, user=request.user)
        return blocked_page(request, blocked.block, device_client(authorization))
    return _result_page(request, authorization, allowed=form.allowed, done=done)


def _result_page(
    request: HttpRequest, authorization: DeviceAuthorization | None, *, allowed: bool, done: bool
) -> HttpResponse:
    context = {"allowed": allowed and done, "denied": not allowed and done}
    if authorization is not None:
        context["app"] = ClientName.of(device_client(authorization).recorded)
    return render(request, "oauthprovider/device_done.html", context, status=200 if done else 400)
