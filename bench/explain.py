"""EXPLAIN (ANALYZE, BUFFERS) of every statement the hot paths run, on the database as it is (PostgreSQL).

    python -m bench.explain

Sends one request of each hot path through Django's test client (settings
from the environment, as for the server), captures the SQL each one runs and
explains it again inside a transaction that is rolled back. The statements
come from the app itself, so the list stays true when the code changes.
Prints Markdown for docs/benchmarks.md.
"""

import os
import re
import secrets
from datetime import timedelta
from urllib.parse import urlencode

import django

SKIPPED = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE")


def _capture(client, method: str, path: str, **kwargs) -> tuple[object, list[str]]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        response = getattr(client, method)(path, **kwargs)
    return response, [q["sql"] for q in captured.captured_queries if not q["sql"].startswith(SKIPPED)]


def _explain(sql: str) -> str:
    from django.db import connection, transaction

    # An INSERT run again (alone, or in a WITH that also writes its audit event)
    # would break a unique constraint; its plan is trivial anyway.
    inserts = sql.startswith("INSERT") or re.match(r"WITH \w+ AS \(INSERT ", sql) is not None
    explain = "EXPLAIN " if inserts else "EXPLAIN (ANALYZE, BUFFERS) "
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(explain + sql)
            plan = "\n".join(row[0] for row in cursor.fetchall())
        transaction.set_rollback(True)  # an explained UPDATE or INSERT really ran
    return plan


def _explained(sql: str) -> str:
    """`sql` as the docs show it (without its column list, which is noise there) and its plan, as Markdown."""
    shown = re.sub(r"^SELECT .*? FROM ", "SELECT … FROM ", sql)
    shown = shown[:400] + (" …" if len(shown) > 400 else "")
    return f"```\n{shown}\n\n{_explain(sql)}\n```\n"


_FUNCTION_CALL = re.compile(r"FROM oauthprovider_code_for_redemption\((.+?), ('[0-9a-f]+')\) c$")


def _inside_function(sql: str) -> str | None:
    """The join that the token exchange's function call (migration 0010) runs, with the call's arguments."""
    from oauthprovider.models import _redemption

    call = _FUNCTION_CALL.search(sql)
    return None if call is None else _redemption(by_function=False).sql % call.groups()


def hot_requests() -> list[tuple[str, list[str]]]:
    """(what, its SQL) for /v1/me, the consent page and its Allow, and the token exchange."""
    from django.conf import settings
    from django.test import Client

    from accounts.audit import SYSTEM
    from accounts.models import User
    from accounts.services import key_create
    from bench.scenarios import CONSENT_CLIENT, consent_path
    from bench.seed import issue_code

    # A user from the middle of the table, as the busy ones are.
    user = User.objects.order_by("pk")[User.objects.count() // 2]
    key, raw = key_create(user=user, name="explain", context=SYSTEM)
    client = Client(SERVER_NAME=settings.ALLOWED_HOSTS[0])
    found = []
    _, sql = _capture(client, "get", "/v1/me", HTTP_X_API_KEY=raw)
    found.append(("GET /v1/me, first call of the minute (key lookup, last_used_at)", sql))

    client.force_login(user)
    page, sql = _capture(client, "get", consent_path())
    found.append(("GET consent page (session, grant, key list, pending request stored)", sql))
    rid = re.search(r'name="request" value="([^"]+)"', page.content.decode()).group(1)
    allowed, sql = _capture(client, "post", "/getKeys/authorize", data={"request": rid, "decision": "allow"})
    found.append(("POST Allow (pending request, new key, grant get-or-create, code)", sql))
    assert allowed.status_code == 302, allowed.status_code

    verifier = secrets.token_urlsafe(48)
    code = issue_code(user=user, key=key, client_id=CONSENT_CLIENT, verifier=verifier)
    body = {
        "grant_type": "authorization_code",
        "code": code,
        "client_id": CONSENT_CLIENT,
        "redirect_uri": f"https://{CONSENT_CLIENT}/callback",
        "code_verifier": verifier,
    }
    content_type = "application/x-www-form-urlencoded"
    exchanged, sql = _capture(
        Client(SERVER_NAME=settings.ALLOWED_HOSTS[0]),
        "post",
        "/getKeys/token",
        data=urlencode(body),
        content_type=content_type,
    )
    assert exchanged.status_code == 200, exchanged.content
    found.append(("POST /getKeys/token (code lookup, redemption UPDATE, audit)", sql))
    return found


def purge_batch_sql() -> str:
    """The batch query of manage.py purge_codes (oauthprovider/management/commands/purge_codes.py)."""
    from django.conf import settings
    from django.db import connection
    from django.utils import timezone

    from oauthprovider.models import AuthorizationCode

    cutoff = timezone.now() - timedelta(days=settings.OAUTH_CODE_RETENTION_DAYS)
    batch = AuthorizationCode.objects.filter(expires_at__lt=cutoff).order_by("expires_at")
    query = batch.values_list("pk", flat=True)[: settings.MAINTENANCE_BATCH_SIZE].query
    sql, params = query.sql_with_params()
    with connection.cursor() as cursor:
        return cursor.mogrify(sql, params)


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
    django.setup()
    for what, statements in [*hot_requests(), ("manage.py purge_codes, one batch", [purge_batch_sql()])]:
        print(f"#### {what}\n")
        for sql in statements:
            print(_explained(sql))
            inner = _inside_function(sql)
            if inner:  # EXPLAIN shows a function as one Function Scan: the join it runs, explained as such
                print(f"Inside the function:\n\n{_explained(inner)}")


if __name__ == "__main__":
    main()
