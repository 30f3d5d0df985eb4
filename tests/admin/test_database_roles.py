"""docs/operations.md's PostgreSQL service role, run as written: the app works, the audit log cannot be rewritten.

The SQL block of docs/operations.md is executed (as the test database's
owner) with a role name of this test's own; the test then connects as that
role, runs the app's normal writes through HTTP and a maintenance command,
and checks that TRUNCATE, DELETE, UPDATE and disabling or dropping the
triggers on the audit log all fail. The role is dropped afterwards.
"""

import re
import secrets
from pathlib import Path
from urllib.parse import urlencode

import pytest
from django.core.management import call_command
from django.db import DatabaseError, connection, connections, transaction
from django.db.utils import load_backend
from django.test import Client

from accounts.models import AuditEvent
from oauthprovider.models import Grant
from tests.conftest import CLIENT_ID, exchange, issue_code, make_user, new_pkce_pair

pytestmark = pytest.mark.postgres

DOC = Path(__file__).resolve().parents[2] / "docs" / "operations.md"
SERVICE_ROLE = "keygrant_app"


def role_sql(role: str, database: str, password: str) -> str:
    [block] = [b for b in re.findall(r"```sql\n(.*?)```", DOC.read_text(), re.DOTALL) if "CREATE ROLE" in b]
    return (
        block.replace(SERVICE_ROLE, role)
        .replace("DATABASE keygrant TO", f'DATABASE "{database}" TO')
        .replace("change-me-to-a-long-random-password", password)
    )


@pytest.fixture
def as_service_role(transactional_db):
    """Create the documented role, make it the default connection's user, and undo both afterwards."""
    if connection.vendor != "postgresql":
        pytest.skip("database roles are a PostgreSQL matter")
    role = f"keygrant_app_test_{secrets.token_hex(4)}"
    password = secrets.token_urlsafe(16)
    owner_settings = connections.settings["default"]
    owner_connection = connections["default"]
    with connection.cursor() as cursor:
        cursor.execute(role_sql(role, owner_settings["NAME"], password))
    role_settings = {**owner_settings, "USER": role, "PASSWORD": password, "CONN_MAX_AGE": 0}
    connections.settings["default"] = role_settings
    connections["default"] = load_backend(role_settings["ENGINE"]).DatabaseWrapper(role_settings, "default")
    try:
        yield role
    finally:
        connections["default"].close()
        connections.settings["default"] = owner_settings
        connections["default"] = owner_connection
        with connection.cursor() as cursor:
            cursor.execute(f'DROP OWNED BY "{role}"; DROP ROLE "{role}";')


def test_the_service_role_runs_the_app_and_cannot_rewrite_the_audit_log(as_service_role, settings):
    settings.RATE_LIMIT_STORE = "database"  # the counters' table too
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_user")
        assert cursor.fetchone()[0] == as_service_role

    # The app's normal writes: an account, a failed and a good sign-in, consent, exchange, revocation.
    make_user("alice")
    browser = Client()
    assert browser.post("/accounts/login/", {"username": "alice", "password": "wrong"}).status_code == 200
    assert browser.post("/accounts/login/", {"username": "alice", "password": "alice-password"}).status_code == 302
    pkce = new_pkce_pair()
    code = issue_code(browser, pkce)
    token = exchange(Client(), code, pkce)
    assert token.status_code == 200
    key = token.json()["access_token"]
    assert Client().get("/v1/me", HTTP_X_API_KEY=key).status_code == 200
    revoked = Client().post(
        "/getKeys/revoke",
        urlencode({"token": key, "client_id": CLIENT_ID}),
        content_type="application/x-www-form-urlencoded",
    )
    assert revoked.status_code == 200
    assert not Grant.objects.get().is_active
    call_command("purge_codes", "--retention-days", "0", verbosity=0)
    events = AuditEvent.objects.count()
    assert events >= 5

    # What it cannot do to the audit log.
    for statement in (
        "TRUNCATE accounts_auditevent",
        "TRUNCATE accounts_auditevent CASCADE",
        "DELETE FROM accounts_auditevent",
        "UPDATE accounts_auditevent SET kind = 'login_failed'",
        "ALTER TABLE accounts_auditevent DISABLE TRIGGER ALL",
        "ALTER TABLE accounts_auditevent DISABLE TRIGGER accounts_auditevent_append_only",
        "DROP TRIGGER accounts_auditevent_append_only ON accounts_auditevent",
        "DROP TABLE accounts_auditevent CASCADE",
        "ALTER TABLE accounts_auditevent OWNER TO CURRENT_USER",
        "CREATE TABLE keygrant_scratch (id int)",
    ):
        with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(statement)
    assert AuditEvent.objects.count() == events
