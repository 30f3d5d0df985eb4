"""GET /getKeys/authorize (validate, log in, consent page) and its POST (the decision)."""

import functools

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import TooManyFieldsSent
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from accounts.audit import RequestContext, client_ip
from accounts.clients import ClientName, display_name
from accounts.models import ApiKey
from oauthprovider import pending, protocol
from oauthprovider.cimd import resolve_metadata_client
from oauthprovider.csrf import consent_csrf_protect
from oauthprovider.forms import NEW_KEY, ConsentForm
from oauthprovider.models import Grant
from oauthprovider.protocol import AuthorizationRequest, OAuthError
from oauthprovider.services import consent_approve, consent_deny


def _redirect(url: str) -> HttpResponse:
    """302 to the validated redirect URI, byte for byte (no rebuilding, no length cap)."""
    response = HttpResponse(status=302)
    response["Location"] = url
    return response


def _reply_url(redirect_uri: str, params: dict[str, str], state: str | None) -> str:
    """The answer to the app: `params`, its state when it sent one, and our issuer (RFC 9207)."""
    if state is not None:
        params["state"] = state
    params["iss"] = settings.OAUTH_ISSUER
    return protocol.with_query(redirect_uri, params)


def error_page(
    request: HttpRequest, exc: OAuthError, *, reply_to: str | None = None, state: str | None = None
) -> HttpResponse:
    """Our own error page: never an automatic redirect (RFC 9700 section 4.11.2).

    `reply_to` is the redirect URI once the client and it are valid: the page
    then offers a link back that carries the error (RFC 6749 4.1.2.1).
    """
    back_link = None
    if reply_to is not None:
        back_link = _reply_url(reply_to, {"error": exc.error, "error_description": exc.description}, state)
    return render(
        request,
        "oauthprovider/error.html",
        {"error": exc.error, "description": exc.description, "back_link": back_link},
        status=exc.status,
    )


def _validated(request: HttpRequest, params: protocol.Params) -> AuthorizationRequest | HttpResponse:
    """The request, validated in DESIGN.md's order; or the error page.

    This is the one place that decides where an error may be reported:
    errors in the client_id or redirect_uri are shown to the person only,
    later ones may also go back to the app, with the state when usable.
    """
    loopback = settings.OAUTH_ALLOW_LOOPBACK_CLIENTS
    fetch = functools.partial(resolve_metadata_client, requester=client_ip(request))
    try:
        client = protocol.parse_client(
            params, allow_loopback=loopback, resolve_metadata_client=fetch if settings.OAUTH_CIMD_ENABLED else None
        )
        redirect_uri = protocol.parse_redirect_uri(params, client, allow_loopback=loopback)
    except OAuthError as exc:
        return error_page(request, exc)
    try:
        return protocol.parse_authorization_request(
            params, client=client, redirect_uri=redirect_uri, allowed_resources=settings.OAUTH_RESOURCES
        )
    except OAuthError as exc:
        return error_page(request, exc, reply_to=redirect_uri, state=protocol.usable_state(params))


def _consent_page(
    request: HttpRequest, auth_request: AuthorizationRequest, rid: str, form: ConsentForm, *, selected: str = NEW_KEY
) -> HttpResponse:
    for key in form.keys.values():
        key.created_for_display = display_name(key.created_for_client)
    client = auth_request.client
    return render(
        request,
        "oauthprovider/consent.html",
        {
            "client": client,
            "app": ClientName.of(client.recorded, declared_name=client.name),
            "auth_request": auth_request,
            "rid": rid,
            "keys": list(form.keys.values()),
            "selected": selected,
            "new_key": NEW_KEY,
            "form": form,
        },
        status=400 if form.errors else 200,
    )


def _active_keys(request: HttpRequest) -> list[ApiKey]:
    return list(ApiKey.objects.active().filter(user=request.user).order_by("-created_at"))


def _previous_choice(request: HttpRequest, auth_request: AuthorizationRequest) -> str:
    """The key chosen last time for this client, if it was an existing key still active."""
    grant = (
        Grant.objects.select_related("key").filter(user=request.user, client_id=auth_request.client.recorded).first()
    )
    if grant and grant.key and grant.key.is_active and not grant.key_created_by_consent:
        return str(grant.key.pk)
    return NEW_KEY


def _no_referrer(view):
    """DESIGN.md: the consent flow never leaks its URL (code_challenge, state) as a Referer."""

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        response = view(request, *args, **kwargs)
        response["Referrer-Policy"] = "no-referrer"
        return response

    return wrapper


@csrf_exempt  # replaced by consent_csrf_protect: the form posts with "Origin: null"
@require_http_methods(["GET", "POST"])
@never_cache
@_no_referrer
@consent_csrf_protect
def authorize(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        return decide(request)
    try:
        params = dict(request.GET.lists())
    except TooManyFieldsSent:
        return error_page(request, OAuthError("invalid_request", "The request has too many parameters."))
    auth_request = _validated(request, params)
    if isinstance(auth_request, HttpResponse):
        return auth_request
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    rid = pending.pending_store(request.session, user_id=request.user.pk, params=auth_request.as_params())
    form = ConsentForm(keys=_active_keys(request))
    return _consent_page(request, auth_request, rid, form, selected=_previous_choice(request, auth_request))


def decide(request: HttpRequest) -> HttpResponse:
    """The consent form's POST: re-validate the stored request, then Allow or Deny."""
    rid = request.POST.get("request", "")
    params = (
        pending.pending_get(request.session, rid=rid, user_id=request.user.pk)
        if request.user.is_authenticated
        else None
    )
    if params is None:
        return error_page(
            request,
            OAuthError(
                "invalid_request",
                "This authorization request has expired or was already answered. Go back to the app and start again.",
            ),
        )
    auth_request = _validated(request, params)
    if isinstance(auth_request, HttpResponse):
        pending.pending_discard(request.session, rid=rid)
        return auth_request
    form = ConsentForm(request.POST, keys=_active_keys(request))
    if not form.is_valid():
        return _consent_page(request, auth_request, rid, form)
    context = RequestContext.from_request(request)
    if form.allowed:
        code = consent_approve(
            user=request.user, auth_request=auth_request, key=form.cleaned_data["key"], context=context
        )
        reply = {"code": code}
    else:
        consent_deny(user=request.user, auth_request=auth_request, context=context)
        reply = {"error": "access_denied", "error_description": "The user denied the request."}
    pending.pending_discard(request.session, rid=rid)
    return _redirect(_reply_url(auth_request.redirect_uri, reply, auth_request.state))
