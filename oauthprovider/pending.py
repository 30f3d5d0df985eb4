"""Authorization requests waiting on the consent page, kept in the user's session.

The consent form carries only an opaque id; the request itself stays on the
server, bound to the user who saw it, and is validated again on the POST.
"""

import secrets
import time

from django.conf import settings
from django.contrib.sessions.backends.base import SessionBase

SESSION_KEY = "oauth_pending"
MAX_PENDING = 10  # several tabs at once, but not an unbounded session


def pending_store(session: SessionBase, *, user_id: int, params: dict[str, list[str]]) -> str:
    now = time.time()
    pending = {
        rid: entry
        for rid, entry in session.get(SESSION_KEY, {}).items()
        if entry["expires"] > now and entry["user"] == user_id
    }
    while len(pending) >= MAX_PENDING:
        pending.pop(min(pending, key=lambda rid: pending[rid]["expires"]))
    rid = secrets.token_urlsafe(24)
    pending[rid] = {
        "user": user_id,
        "params": params,
        "expires": now + settings.OAUTH_PENDING_REQUEST_TTL_SECONDS,
    }
    session[SESSION_KEY] = pending
    return rid


def pending_get(session: SessionBase, *, rid: str, user_id: int) -> dict[str, list[str]] | None:
    entry = session.get(SESSION_KEY, {}).get(rid) if isinstance(rid, str) else None
    if not entry or entry["user"] != user_id or entry["expires"] <= time.time():
        return None
    return entry["params"]


def pending_discard(session: SessionBase, *, rid: str) -> None:
    pending = session.get(SESSION_KEY, {})
    if pending.pop(rid, None) is not None:
        session[SESSION_KEY] = pending
