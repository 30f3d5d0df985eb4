"""A key's plaintext (and a code, and a verifier) never lands in the database,
the logs, the audit log, or the admin pages (DESIGN.md "API keys")."""

import json
import logging
from dataclasses import dataclass

from django.contrib import admin
from django.db import connection
from django.test import Client
from django.urls import NoReverseMatch, reverse

from accounts.audit import SYSTEM
from accounts.models import ApiKey, AuditEvent, User
from accounts.services import key_create
from tests.conftest import approve, authorize_params, authorize_url, exchange, new_pkce_pair, query_of


@dataclass
class Secrets:
    key: str
    code: str
    verifier: str

    def all(self) -> list[str]:
        return [self.key, self.code, self.verifier]


def full_flow(alice_client: Client) -> Secrets:
    """authorize -> consent -> token -> API, a failed exchange and a replay, as a client app does them."""
    pkce = new_pkce_pair()
    code = query_of(approve(alice_client, authorize_params(pkce)))["code"][0]
    app = Client()
    assert exchange(app, code, pkce, code_verifier="w" * 43).status_code == 400  # a wrong verifier first
    response = exchange(app, code, pkce)
    assert response.status_code == 200
    key = response.json()["access_token"]
    assert app.get("/v1/me", HTTP_X_API_KEY=key).status_code == 200
    assert app.get("/v1/me", HTTP_AUTHORIZATION=f"Bearer {key}").status_code == 200
    assert exchange(app, code, pkce).status_code == 400  # the replay revokes the key
    assert app.get("/v1/me", HTTP_X_API_KEY=key).status_code == 401
    return Secrets(key=key, code=code, verifier=pkce.verifier)


def dump_table(table: str) -> str:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")
        return "\n".join(repr(row) for row in cursor.fetchall())


# --- Database -------------------------------------------------------------------------------


def test_the_api_key_table_holds_no_plaintext_key(alice_client, alice_key):
    secrets = full_flow(alice_client)
    rows = dump_table(ApiKey._meta.db_table)
    for raw in (secrets.key, alice_key[1]):
        assert raw not in rows
        assert raw[len("kg_") :] not in rows


def test_the_stored_key_is_encrypted_and_hashed(alice, alice_key):
    key, raw = alice_key
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT key_hash, key_encrypted, prefix FROM {connection.ops.quote_name(ApiKey._meta.db_table)}"
        )
        key_hash, key_encrypted, prefix = cursor.fetchone()
    assert len(key_hash) == 64 and key_hash != raw
    assert raw not in key_encrypted
    assert raw.startswith(prefix) and len(prefix) < len(raw) // 4
    assert key.plaintext() == raw


def test_no_table_holds_a_key_a_code_or_a_verifier(alice_client):
    secrets = full_flow(alice_client)
    for table in connection.introspection.table_names():
        contents = dump_table(table)
        for secret in secrets.all():
            assert secret not in contents, f"{table} holds a secret"


# --- Logs --------------------------------------------------------------------------------------


def test_no_log_record_holds_a_key_a_code_or_a_verifier(alice_client, caplog, settings):
    settings.DEBUG = True
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="django.db.backends")
    connection.force_debug_cursor = True  # SQL with its parameters goes to django.db.backends
    try:
        secrets = full_flow(alice_client)
        Client().get("/v1/me", HTTP_X_API_KEY=secrets.key + "x")  # an unknown key is logged nowhere either
    finally:
        connection.force_debug_cursor = False
    assert any(r.name == "django.db.backends" for r in caplog.records), "SQL logging was captured"
    for record in caplog.records:
        text = " ".join(
            [record.getMessage(), repr(record.args), record.exc_text or "", repr(getattr(record, "sql", ""))]
            + [repr(getattr(record, "params", ""))]
        )
        for secret in secrets.all():
            assert secret not in text, f"{record.name} logged a secret"


# --- Audit log -----------------------------------------------------------------------------------


def test_no_audit_event_holds_a_key_a_code_or_a_verifier(alice_client):
    secrets = full_flow(alice_client)
    events = list(AuditEvent.objects.values())
    kinds = {e["kind"] for e in events}
    assert {"consent_granted", "code_issued", "token_issued", "code_replay", "key_revoked"} <= kinds
    dumped = json.dumps(events, default=str)
    for secret in secrets.all():
        assert secret not in dumped


# --- Pages -----------------------------------------------------------------------------------------


def test_the_consent_page_shows_existing_keys_masked(alice_client, alice_key):
    page = alice_client.get(authorize_url(authorize_params(new_pkce_pair())))
    assert page.status_code == 200
    key, raw = alice_key
    assert key.prefix in page.content.decode()
    assert raw not in page.content.decode()


def test_the_admin_never_shows_a_key_a_code_or_a_verifier(alice, alice_client):
    changelist = reverse("admin:accounts_apikey_changelist")
    key_create(user=alice, name="laptop", context=SYSTEM)
    secrets = full_flow(alice_client)
    operator = Client()
    operator.force_login(User.objects.create_superuser("root", "root@example.com", "root-password"))

    pages = [changelist]
    for model in admin.site._registry:
        info = (model._meta.app_label, model._meta.model_name)
        try:
            pages.append(reverse("admin:{}_{}_changelist".format(*info)))
        except NoReverseMatch:
            continue
        for pk in model.objects.values_list("pk", flat=True)[:20]:
            pages.append(reverse("admin:{}_{}_change".format(*info), args=[pk]))

    for url in pages:
        response = operator.get(url)
        # A change page may be refused outright (403) for read-only models; it then shows nothing.
        assert response.status_code in (200, 403) if "/change/" in url else response.status_code == 200, url
        content = response.content.decode()
        for secret in secrets.all():
            assert secret not in content, f"{url} shows a secret"

    shown = operator.get(changelist).content.decode()
    assert all(key.prefix in shown for key in ApiKey.objects.all()), "keys are listed by their prefix"
