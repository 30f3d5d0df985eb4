"""Connected apps: the user's grants, and revoking them (DESIGN.md "Grants").

Lives here, not in accounts: grants belong to the OAuth side, and accounts
knows nothing of oauthprovider.
"""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import F
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods

from accounts.audit import RequestContext
from accounts.clients import ClientName
from accounts.models import ApiKey
from oauthprovider.models import Grant
from oauthprovider.services import grant_revoke

REVOKE_KEY, KEEP_KEY = "revoke", "keep"


def _held_key(grant: Grant) -> ApiKey | None:
    """The pre-existing key the user chose for this app, if revoking the grant would leave it working.

    Keys created by this app's consents are revoked with the grant anyway.
    """
    key = grant.key
    if key is None or not key.is_active or grant.key_created_by_consent or key.created_for_client == grant.client_id:
        return None
    return key


@require_GET
@login_required
@never_cache
def app_list(request: HttpRequest) -> HttpResponse:
    grants = (
        Grant.objects.filter(user=request.user)
        .select_related("key")
        .order_by(F("revoked_at").desc(nulls_first=True), "-last_authorized_at")
    )
    apps = [(grant, ClientName.of(grant.client_id, declared_name=grant.client_name)) for grant in grants]
    return render(request, "oauthprovider/apps.html", {"apps": apps})


@require_http_methods(["GET", "POST"])
@login_required
@never_cache
def app_revoke(request: HttpRequest, grant_id: int) -> HttpResponse:
    """GET explains what revoking does; POST revokes. Someone else's grant is a 404."""
    grant = get_object_or_404(Grant.objects.select_related("key"), pk=grant_id, user=request.user)
    name = ClientName.of(grant.client_id, declared_name=grant.client_name)
    if not grant.is_active:
        messages.info(request, f"{name.display_host} was already disconnected.")
        return redirect("oauth:apps")
    held_key = _held_key(grant)
    choice = request.POST.get("key", "")
    if request.method == "GET" or (held_key is not None and choice not in (REVOKE_KEY, KEEP_KEY)):
        created_keys = ApiKey.objects.active().filter(user=request.user, created_for_client=grant.client_id)
        context = {"grant": grant, "app": name, "held_key": held_key, "created_keys": created_keys}
        if request.method == "POST":
            context["error"] = "Choose whether to revoke the key too, or keep it."
        return render(request, "oauthprovider/apps_revoke.html", context, status=400 if "error" in context else 200)
    revoked = grant_revoke(
        grant=grant,
        by=Grant.RevokedBy.USER,
        context=RequestContext.from_request(request),
        actor=request.user,
        revoke_key=held_key is not None and choice == REVOKE_KEY,
    )
    _report(request, name=name, revoked=revoked, kept=held_key if choice == KEEP_KEY else None)
    return redirect("oauth:apps")


def _report(request: HttpRequest, *, name: ClientName, revoked: list[ApiKey], kept: ApiKey | None) -> None:
    text = f"Disconnected {name.display_host}."
    if revoked:
        text += " Revoked: " + ", ".join(f"“{k.name}” ({k.masked})" for k in revoked) + "."
    if kept is not None:
        text += f" “{kept.name}” ({kept.masked}) still works, and {name.display_host} still holds it."
    messages.success(request, text)
