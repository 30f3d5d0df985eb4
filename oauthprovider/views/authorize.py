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

from accounts.audit import RequestContext
from accounts.hosts import client_display
from accounts.models import ApiKey
from oauthprovider import pending, protocol
from oauthprovider.cimd import resolve_metadata_client
from oauthprovider.csrf import consent_csrf_protect
from oauthprovider.models import Grant
from oauthprovider.protocol import AuthorizationRequest, OAuthError
from oauthprovider.services import NEW_KEY, KeyChoiceError, consent_approve, consent_deny


def _parse(params: protocol.Params) -> AuthorizationRequest:
    return protocol.parse_authorization_request(
        params,
        allow_loopback=settings.OAUTH_ALLOW_LOOPBACK_CLIENTS,
        allowed_resources=settings.OAUTH_RESOURCES,
        resolve_metadata_client=resolve_metadata_client if settings.OAUTH_CIMD_ENABLED else None,
    )


def _redirect(url: str) -> HttpResponse:
    """302 to the validated redirect URI, byte for byte (no rebuilding, no length cap)."""
    response = HttpResponse(status=302)
    response["Location"] = url
    return response


def error_page(request: HttpRequest, exc: OAuthError) -> HttpResponse:
    """Our own error page (never an automatic redirect: RFC 9700 section 4.11.2).

    When the client and redirect URI are known, it offers a link back that
    carries the error the RFC 6749 4.1.2.1 way.
    """
    back_link = None
    if exc.redirectable and exc.redirect_uri:
        params = {"error": exc.error, "error_description": exc.description}
        if exc.state is not None:
            params["state"] = exc.state
        params["iss"] = settings.OAUTH_ISSUER
        back_link = protocol.with_query(exc.redirect_uri, params)
    return render(
        request,
        "oauthprovider/error.html",
        {"error": exc.error, "description": exc.description, "back_link": back_link},
        status=exc.status,
    )


def _consent_page(
    request: HttpRequest, auth_request: AuthorizationRequest, rid: str, *, selected: str, error: str = ""
) -> HttpResponse:
    keys = list(ApiKey.objects.active().filter(user=request.user).order_by("-created_at"))
    for key in keys:
        key.client_display = client_display(key.created_for_client) if key.created_for_client else ""
    return render(
        request,
        "oauthprovider/consent.html",
        {
            "client": auth_request.client,
            "auth_request": auth_request,
            "rid": rid,
            "keys": keys,
            "selected": selected,
            "new_key": NEW_KEY,
            "error": error,
        },
        status=400 if error else 200,
    )


def _previous_choice(request: HttpRequest, auth_request: AuthorizationRequest) -> str:
    """The key chosen last time for this host, if it was an existing key still active."""
    grant = (
        Grant.objects.select_related("key").filter(user=request.user, client_id=auth_request.client.grant_id).first()
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
        auth_request = _parse(dict(request.GET.lists()))
    except OAuthError as exc:
        return error_page(request, exc)
    except TooManyFieldsSent:
        return error_page(
            request, OAuthError("invalid_request", "The request has too many parameters.", redirectable=False)
        )
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    rid = pending.pending_store(request.session, user_id=request.user.pk, params=auth_request.as_params())
    return _consent_page(request, auth_request, rid, selected=_previous_choice(request, auth_request))


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
                redirectable=False,
            ),
        )
    try:
        auth_request = _parse(params)
    except OAuthError as exc:
        pending.pending_discard(request.session, rid=rid)
        return error_page(request, exc)
    decision = request.POST.get("decision")
    context = RequestContext.from_request(request)
    response_params: dict[str, str]
    if decision == "deny":
        consent_deny(user=request.user, auth_request=auth_request, context=context)
        response_params = {"error": "access_denied", "error_description": "The user denied the request."}
    elif decision == "allow":
        key_choice = request.POST.get("key", NEW_KEY)
        try:
            code = consent_approve(user=request.user, auth_request=auth_request, key_choice=key_choice, context=context)
        except KeyChoiceError:
            return _consent_page(
                request, auth_request, rid, selected=NEW_KEY, error="Choose one of your active keys, or a new key."
            )
        response_params = {"code": code}
    else:
        return _consent_page(request, auth_request, rid, selected=NEW_KEY, error="Choose Allow or Deny.")
    pending.pending_discard(request.session, rid=rid)
    if auth_request.state is not None:
        response_params["state"] = auth_request.state
    response_params["iss"] = settings.OAUTH_ISSUER  # RFC 9207
    return _redirect(protocol.with_query(auth_request.redirect_uri, response_params))
