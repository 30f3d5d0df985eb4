"""Authorization requests waiting on the consent page: one row each, bound to the person who saw it.

The consent form carries only an opaque id (192 random bits, of which only a
hash is stored); the request itself stays on the server and is validated
again on the POST. Each request has its own row, so requests of one person
never overwrite each other (DESIGN.md "Authorization codes": tabs, an MCP
client starting two flows), and showing the consent page writes one small
row instead of the whole session. A request is answered once: the decision
takes (deletes) its row in the transaction that records the decision, so of
two POSTs of one form exactly one counts. Expired rows are removed by
`purge_codes`.
"""

import secrets
from datetime import timedelta

from django.conf import settings
from django.db import connection
from django.utils import timezone

from accounts.models import User
from accounts.rows import insert_row
from oauthprovider.models import PendingConsent
from oauthprovider.protocol import hash_secret

Params = dict[str, list[str]]

# Fixed statements (accounts/rows.py says why): every consent page and every decision runs them.
_TABLE = PendingConsent._meta.db_table
_LOOKUP_SQL = f"SELECT params FROM {_TABLE} WHERE rid_hash = %s AND user_id = %s AND expires_at > %s"
_PARAMS = PendingConsent._meta.get_field("params")
_TAKE_SQL = f"DELETE FROM {_TABLE} WHERE rid_hash = %s AND user_id = %s"


def pending_store(*, user: User, params: Params) -> str:
    """Keep a validated request for `user`; returns the id the consent form carries."""
    rid = secrets.token_urlsafe(24)
    expires_at = timezone.now() + timedelta(seconds=settings.OAUTH_PENDING_REQUEST_TTL_SECONDS)
    insert_row(
        PendingConsent, {"rid_hash": hash_secret(rid), "user": user.pk, "params": params, "expires_at": expires_at}
    )
    return rid


def pending_get(*, rid: str, user: User) -> Params | None:
    """The request behind `rid` if it is `user`'s and still in time; None otherwise."""
    if not isinstance(rid, str) or not rid or not user.is_authenticated:
        return None
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    with connection.cursor() as cursor:
        cursor.execute(_LOOKUP_SQL, [hash_secret(rid), user.pk, now])
        row = cursor.fetchone()
    return _PARAMS.from_db_value(row[0], None, connection) if row else None


def pending_take(*, rid: str, user: User) -> bool:
    """Remove the request as it is answered; False if another answer took it first.

    Call inside the transaction that records the decision.
    """
    with connection.cursor() as cursor:
        cursor.execute(_TAKE_SQL, [hash_secret(rid), user.pk])
        return cursor.rowcount == 1
