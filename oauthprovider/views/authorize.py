"""GET /getKeys/authorize (validate, log in, consent page) and its POST (the decision)."""

import functools

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import TooManyFieldsSent
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from accounts.audit import RequestContext, client_ip
from accounts.clients import ClientName
from oauthprovider import pending, protocol
from oauthprovider.cimd import resolve_metadata_client
from oauthprovider.csrf import consent_csrf_protect
from oauthprovider.forms import ConsentForm
from oauthprovider.models import ClientBlock
from oauthprovider.protocol import AuthorizationRequest, OAuthError
from oauthprovider.services import ClientBlocked, client_block_of, consent_approve, consent_deny
from oauthprovider.views.consent import consent_page, no_referrer


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


def blocked_page(request: HttpRequest, block: ClientBlock, client: protocol.Client) -> HttpResponse:
    """A blocked client's request: our page naming the block, never a redirect, no link back (403)."""
    app = ClientName.of(client.recorded, declared_name=client.name)
    return render(request, "oauthprovider/blocked.html", {"app": app, "client_block": block}, status=403)


def _validated(request: HttpRequest, params: protocol.Params) -> AuthorizationRequest | HttpResponse:
    """The request, validated in DESIGN.md's order; or the error page.

    This is the one place that decides where an error may be reported:
    errors in the client_id or redirect_uri are shown to the person only,
    later ones may also go back to the app, with the state when usable. A
    client an operator blocked gets our page naming the block, and nothing
    goes back to it.
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
    block = client_block_of(client)
    if block is not None:
        return blocked_page(request, block, client)
    try:
        return protocol.parse_authorization_request(
            params, client=client, redirect_uri=redirect_uri, allowed_resources=settings.OAUTH_RESOURCES
        )
    except OAuthError as exc:
        return error_page(request, exc, reply_to=redirect_uri, state=protocol.usable_state(params))


def _consent_page(request: HttpRequest, auth_request: AuthorizationRequest, rid: str, form: ConsentForm):
    return consent_page(
        request, auth_request.client, rid, form, auth_request=auth_request, search_params=auth_request.as_params()
    )


def _already_answered(request: HttpRequest) -> HttpResponse:
    return error_page(
        request,
        OAuthError(
            "invalid_request",
            "This authorization request has expired or was already answered. Go back to the app and start again.",
        ),
    )


@csrf_exempt  # replaced by consent_csrf_protect: the form posts with "Origin: null"
@require_http_methods(["GET", "POST"])
@never_cache
@no_referrer
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
    rid = pending.pending_store(user=request.user, params=auth_request.as_params())
    return _consent_page(request, auth_request, rid, ConsentForm(user=request.user))


def decide(request: HttpRequest) -> HttpResponse:
    """The consent form's POST: re-validate the stored request, then Allow or Deny, once."""
    rid = request.POST.get("request", "")
    params = pending.pending_get(rid=rid, user=request.user)
    if params is None:
        return _already_answered(request)
    auth_request = _validated(request, params)
    if isinstance(auth_request, HttpResponse):
        pending.pending_take(rid=rid, user=request.user)  # it cannot become valid again
        return auth_request
    form = ConsentForm(request.POST, user=request.user)
    if not form.is_valid():
        return _consent_page(request, auth_request, rid, form)
    context = RequestContext.from_request(request)
    try:
        with transaction.atomic():
            if not pending.pending_take(rid=rid, user=request.user):
                return _already_answered(request)  # another POST of this form was first
            if form.allowed:
                code = consent_approve(
                    user=request.user,
                    auth_request=auth_request,
                    key=form.cleaned_data["key"],
                    context=context,
                    limits=form.cleaned_data["limits"],
                )
                reply = {"code": code}
            else:
                consent_deny(user=request.user, client=auth_request.client, context=context)
                reply = {"error": "access_denied", "error_description": "The user denied the request."}
    except ClientBlocked as blocked:  # blocked while the page was open: nothing was written
        pending.pending_take(rid=rid, user=request.user)
        return blocked_page(request, blocked.block, auth_request.client)
    return _redirect(_reply_url(auth_request.redirect_uri, reply, auth_request.state))
