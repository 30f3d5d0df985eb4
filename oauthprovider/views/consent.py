"""The consent page, shared by the code flow and the device flow (DESIGN.md flow step 3).

It offers a new key for the app (the default) and the person's own active
keys: the key chosen last time for this app first, then the most recently
used ones. People with many keys (apps re-authorised many times) see a
bounded list and a search box instead of hundreds of rows.
"""

import functools
from dataclasses import dataclass

from django.db import connection
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from accounts.clients import ClientName, display_name
from accounts.models import ApiKey, User
from accounts.rows import Select
from oauthprovider.forms import NEW_KEY, ConsentForm
from oauthprovider.models import Grant
from oauthprovider.protocol import Client

KEYS_SHOWN = 10
MAX_SEARCH = 100


@dataclass(frozen=True)
class KeyOffer:
    keys: list[ApiKey]  # at most KEYS_SHOWN + 1, the previous choice first
    previous: ApiKey | None  # the key chosen last time for this app, still usable, if it was an existing key
    more: bool  # more usable keys (matching the search) exist than are offered


def offered_keys(user: User, client: Client, *, search: str, now) -> KeyOffer:
    """The person's usable keys to offer, in one statement: the previous choice, then the most recently used.

    Every consent page asks, so it is one fixed statement (accounts/rows.py
    says why) rather than two ORM queries. `search` narrows the list by name
    or prefix; the previous choice is offered whatever the search.
    """
    params: list = [user.pk, client.recorded, user.pk, connection.ops.adapt_datetimefield_value(now)]
    if search:
        pattern = search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        params += [f"%{pattern.lower()}%", f"{pattern}%"]
    found = _offer(searching=bool(search)).all(params)
    previous = found[0] if found and found[0].is_previous else None
    limit = KEYS_SHOWN + (previous is not None)
    return KeyOffer(keys=found[:limit], previous=previous, more=len(found) > limit)


@functools.cache
def _offer(*, searching: bool) -> Select:
    keys, grants = ApiKey._meta.db_table, Grant._meta.db_table
    matching = " AND (p.key_id IS NOT NULL OR LOWER(k.name) LIKE %s ESCAPE '\\' OR k.prefix LIKE %s ESCAPE '\\')"
    return Select(
        ApiKey,
        "SELECT {fields}, p.key_id IS NOT NULL AS is_previous"
        f" FROM {keys} k LEFT JOIN (SELECT key_id FROM {grants}"
        "  WHERE user_id = %s AND client_id = %s AND NOT key_created_by_consent) p ON p.key_id = k.id"
        " WHERE k.user_id = %s AND k.revoked_at IS NULL AND (k.expires_at IS NULL OR k.expires_at > %s)"
        f"{matching if searching else ''}"
        " ORDER BY is_previous DESC, k.last_used_at IS NULL, k.last_used_at DESC, k.created_at DESC"
        f" LIMIT {KEYS_SHOWN + 2}",
        alias="k",
        extra=("is_previous",),
    )


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
    offer = offered_keys(request.user, client, search=search, now=timezone.now())
    for key in offer.keys:
        key.created_for_display = display_name(key.created_for_client)
    if form.is_bound:  # what was posted, unless that was the fault
        selected = NEW_KEY if "key" in form.errors else form.data.get("key", NEW_KEY)
    else:
        selected = str(offer.previous.pk) if offer.previous is not None else NEW_KEY
    return render(
        request,
        "oauthprovider/consent.html",
        {
            "client": client,
            "app": ClientName.of(client.recorded, declared_name=client.name),
            "rid": rid,
            "keys": offer.keys,
            "more_keys": offer.more,
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
