"""The consent page, shared by the code flow and the device flow (DESIGN.md flow step 3).

It offers a new key for the app (the default) and the person's own active
keys: the key chosen last time for this app first, then the most recently
used ones. People with many keys (apps re-authorised many times) see a
bounded list and a search box instead of hundreds of rows.
"""

import functools

from django.db.models import F, Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from accounts.clients import ClientName, display_name
from accounts.models import ApiKey, User
from oauthprovider.forms import NEW_KEY, ConsentForm
from oauthprovider.protocol import Client

KEYS_SHOWN = 10
MAX_SEARCH = 100


def previous_choice(user: User, client: Client) -> ApiKey | None:
    """The key chosen last time for this client, if it was one of the person's existing keys, still usable."""
    chosen = ApiKey.objects.usable().filter(
        user=user, grants__user=user, grants__client_id=client.recorded, grants__key_created_by_consent=False
    )
    return chosen.order_by().first()


def offered_keys(user: User, *, previous: ApiKey | None, search: str) -> tuple[list[ApiKey], bool]:
    """At most KEYS_SHOWN usable keys to offer (the previous choice first), and whether more exist."""
    keys = ApiKey.objects.usable().filter(user=user)
    if search:
        keys = keys.filter(Q(name__icontains=search) | Q(prefix__startswith=search))
    if previous is not None:
        keys = keys.exclude(pk=previous.pk)
    recent = list(keys.order_by(F("last_used_at").desc(nulls_last=True), "-created_at")[: KEYS_SHOWN + 1])
    offered = ([previous] if previous is not None else []) + recent[:KEYS_SHOWN]
    return offered, len(recent) > KEYS_SHOWN


def consent_page(
    request: HttpRequest,
    client: Client,
    rid: str,
    form: ConsentForm,
    *,
    search_params: dict[str, list[str]] | None = None,
    **context,
) -> HttpResponse:
    """The page itself; `context` names the flow (auth_request, or device and user_code).

    `search_params` are the query parameters that show this page again with a
    key search (the authorization request itself); None where there is none.
    """
    search = request.GET.get("key_search", "").strip()[:MAX_SEARCH]
    previous = previous_choice(request.user, client)
    keys, more = offered_keys(request.user, previous=previous, search=search)
    for key in keys:
        key.created_for_display = display_name(key.created_for_client)
    if form.is_bound:  # what was posted, unless that was the fault
        selected = NEW_KEY if "key" in form.errors else form.data.get("key", NEW_KEY)
    else:
        selected = str(previous.pk) if previous is not None else NEW_KEY
    return render(
        request,
        "oauthprovider/consent.html",
        {
            "client": client,
            "app": ClientName.of(client.recorded, declared_name=client.name),
            "rid": rid,
            "keys": keys,
            "more_keys": more,
            "key_search": search,
            "search_params": search_params,
            "selected": selected,
            "new_key": NEW_KEY,
            "form": form,
            "form_action": request.path,
            **context,
        },
        status=400 if form.errors else 200,
    )


def no_referrer(view):
    """DESIGN.md: the consent flow never leaks its URL (code_challenge, state) as a Referer."""

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        response = view(request, *args, **kwargs)
        response["Referrer-Policy"] = "no-referrer"
        return response

    return wrapper
