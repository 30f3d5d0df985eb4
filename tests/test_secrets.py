"""A key's plaintext (and a code, and a verifier) never lands in the database,
the logs, the audit log, or the admin pages (DESIGN.md "API keys")."""

import json
import logging
from dataclasses import dataclass

import pytest
from django.contrib import admin
from django.db import connection
from django.test import Client
from django.urls import NoReverseMatch, reverse

from accounts.audit import SYSTEM
from accounts.models import ApiKey, AuditEvent, User
from accounts.services import key_create
from tests.conftest import (
    approve,
    authorize_params,
    authorize_url,
    exchange,
    force_login_with_second_factor,
    new_pkce_pair,
    query_of,
)


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
    force_login_with_second_factor(operator, User.objects.create_superuser("root", "root@example.com", "root-password"))

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


# --- Error reports (issue #13: machine endpoints declare their secrets) -----------------------


class ReportCatcher:
    """The text and HTML error reports Django would mail for each request that raised."""

    def __init__(self) -> None:
        self.reports: list[str] = []

    def __call__(self, sender, request=None, **kwargs) -> None:
        import sys

        from django.views.debug import ExceptionReporter

        reporter = ExceptionReporter(request, *sys.exc_info(), is_email=True)
        self.reports.append(reporter.get_traceback_text() + reporter.get_traceback_html())


@pytest.fixture
def reports():
    from django.core.signals import got_request_exception

    catcher = ReportCatcher()
    got_request_exception.connect(catcher)
    yield catcher
    got_request_exception.disconnect(catcher)


def boom(*args, **kwargs):
    raise RuntimeError("a failure deep inside")


def form(path: str, **data):
    from urllib.parse import urlencode

    return Client(raise_request_exception=False).post(
        path, urlencode(data), content_type="application/x-www-form-urlencoded"
    )


@pytest.mark.parametrize(
    ("view", "names"),
    [
        ("oauthprovider.views.token.token", {"code", "code_verifier", "client_secret"}),
        ("oauthprovider.views.revoke.revoke", {"token", "client_secret"}),
        ("oauthprovider.views.introspect.introspect", {"token", "client_secret"}),
        ("oauthprovider.views.register.register", "__ALL__"),
    ],
)
def test_every_machine_endpoint_declares_its_secret_parameters(view, names):
    from django.test import RequestFactory
    from django.utils.module_loading import import_string

    request = RequestFactory().post("/", {})
    import_string(view)(request)  # the decorator marks the request it sees
    marked = request.sensitive_post_parameters
    assert marked == "__ALL__" if names == "__ALL__" else set(marked) >= names


def test_a_failing_token_exchange_reports_no_code_verifier_or_key(alice_client, reports, monkeypatch):
    pkce = new_pkce_pair()
    code = query_of(approve(alice_client, authorize_params(pkce)))["code"][0]
    raw = ApiKey.objects.get().plaintext()
    monkeypatch.setattr("oauthprovider.services.audit_row", boom)  # after the key was decrypted
    response = form(
        "/getKeys/token",
        grant_type="authorization_code",
        code=code,
        client_id="yourapp.com",
        redirect_uri="https://yourapp.com/callback",
        code_verifier=pkce.verifier,
        client_secret="a-secret-nobody-should-send",
    )
    assert response.status_code == 500
    [report] = reports.reports
    assert "a failure deep inside" in report
    for secret in (code, pkce.verifier, raw, "a-secret-nobody-should-send"):
        assert secret not in report


def test_a_failing_revocation_reports_no_key(alice, reports, monkeypatch):
    _, raw = key_create(user=alice, name="laptop", context=SYSTEM, created_for_client="yourapp.com")
    monkeypatch.setattr("oauthprovider.services.key_revoke", boom)
    assert form("/getKeys/revoke", token=raw, client_id="yourapp.com").status_code == 500
    [report] = reports.reports
    assert "a failure deep inside" in report and raw not in report


def test_a_failing_introspection_reports_neither_key_nor_secret(alice, reports, monkeypatch, settings):
    import base64

    from oauthprovider.introspection import resource_server_create

    _, raw = key_create(user=alice, name="laptop", context=SYSTEM)
    _, client_id, secret = resource_server_create(name="rs", resources=[settings.OAUTH_ISSUER])
    monkeypatch.setattr("oauthprovider.views.introspect.key_introspect", boom)
    basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    response = Client(raise_request_exception=False).post(
        "/getKeys/introspect",
        f"token={raw}",
        content_type="application/x-www-form-urlencoded",
        HTTP_AUTHORIZATION=f"Basic {basic}",
    )
    assert response.status_code == 500
    [report] = reports.reports
    for leaked in (raw, secret, basic):
        assert leaked not in report


def test_a_failing_api_call_reports_no_key(alice, reports, monkeypatch):
    _, raw = key_create(user=alice, name="laptop", context=SYSTEM)
    monkeypatch.setattr(ApiKey, "last_used_is_stale", boom)
    for header in ({"HTTP_X_API_KEY": raw}, {"HTTP_AUTHORIZATION": f"Bearer {raw}"}):
        assert Client(raise_request_exception=False).get("/v1/me", **header).status_code == 500
    assert len(reports.reports) == 2
    for report in reports.reports:
        assert "a failure deep inside" in report and raw not in report
