"""The audit log is append-only: no admin page, action or database statement changes it."""

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.db import DatabaseError, connection, transaction
from django.db.models import ProtectedError
from django.urls import reverse

from accounts.audit import SYSTEM, audit_record
from accounts.models import AuditEvent
from tests.conftest import make_user

EVENTS = reverse("admin:accounts_auditevent_changelist")


@pytest.fixture
def event(alice_key) -> AuditEvent:
    return AuditEvent.objects.get(kind=AuditEvent.Kind.KEY_CREATED)


def test_the_event_page_is_read_only(operator_client, event):
    page = operator_client.get(reverse("admin:accounts_auditevent_change", args=[event.pk])).content.decode()
    assert "Key created" in page
    assert 'name="_save"' not in page
    assert "deletelink" not in page


def test_an_event_cannot_be_changed_through_admin(operator_client, event):
    response = operator_client.post(
        reverse("admin:accounts_auditevent_change", args=[event.pk]), {"kind": "login_failed", "_save": "Save"}
    )
    assert response.status_code == 403
    assert AuditEvent.objects.get(pk=event.pk).kind == AuditEvent.Kind.KEY_CREATED


def test_an_event_cannot_be_deleted_through_admin(operator_client, event):
    url = reverse("admin:accounts_auditevent_delete", args=[event.pk])
    assert operator_client.get(url).status_code == 403
    assert operator_client.post(url, {"post": "yes"}).status_code == 403
    assert AuditEvent.objects.filter(pk=event.pk).exists()


def test_an_event_cannot_be_added_through_admin(operator_client, event):
    assert operator_client.get(reverse("admin:accounts_auditevent_add")).status_code == 403
    assert operator_client.post(reverse("admin:accounts_auditevent_add"), {"kind": "key_created"}).status_code == 403


def test_the_event_list_offers_no_delete_action(operator_client, event):
    page = operator_client.get(EVENTS).content.decode()
    assert "delete_selected" not in page
    assert 'name="action"' not in page
    operator_client.post(EVENTS, {"action": "delete_selected", ACTION_CHECKBOX_NAME: [event.pk], "post": "yes"})
    assert AuditEvent.objects.filter(pk=event.pk).exists()


def test_the_orm_refuses_updates_and_deletes(event):
    with pytest.raises(PermissionError):
        AuditEvent.objects.filter(pk=event.pk).update(kind="login_failed")
    with pytest.raises(PermissionError):
        AuditEvent.objects.filter(pk=event.pk).delete()
    with pytest.raises(PermissionError):
        event.save()
    with pytest.raises(PermissionError):
        event.delete()


def test_the_database_refuses_to_update_an_event(event):
    # A trigger (accounts migration 0003); SQLite drops triggers when Django
    # rebuilds a table, so this also catches a later migration losing it.
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("UPDATE accounts_auditevent SET kind = 'login_failed'")
    assert AuditEvent.objects.get(pk=event.pk).kind == AuditEvent.Kind.KEY_CREATED


def test_the_database_refuses_to_delete_an_event(event):
    """Issue #13 item 17: on SQLite a raw DELETE used to remove rows (migration 0007 closes it)."""
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("DELETE FROM accounts_auditevent")
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("DELETE FROM accounts_auditevent WHERE id = %s", [event.pk])
    assert AuditEvent.objects.filter(pk=event.pk).exists()


def test_a_user_in_the_log_cannot_be_deleted(alice, event):
    with pytest.raises(ProtectedError):
        alice.delete()
    assert AuditEvent.objects.get(pk=event.pk).subject == alice


def test_an_admin_who_acted_cannot_be_deleted_either(operator, alice):
    audit_record(kind=AuditEvent.Kind.GRANT_REVOKED, context=SYSTEM, actor_kind="admin", actor=operator, subject=alice)
    with pytest.raises(ProtectedError):
        operator.delete()


def test_the_database_refuses_to_delete_a_user_in_the_log(alice, event):
    with pytest.raises(DatabaseError), transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("DELETE FROM accounts_apikey WHERE user_id = %s", [alice.pk])
            cursor.execute("DELETE FROM accounts_user WHERE id = %s", [alice.pk])
        connection.check_constraints()
    assert AuditEvent.objects.get(pk=event.pk).subject_id == alice.pk


def test_admin_explains_why_a_user_in_the_log_cannot_be_deleted(operator_client, alice, event):
    page = operator_client.get(reverse("admin:accounts_user_delete", args=[alice.pk])).content.decode()
    assert "audit log is\nappend-only" in page
    assert "untick <strong>Active</strong>" in page


def test_a_user_with_no_events_can_still_be_deleted(db):
    make_user("nobody").delete()


def test_every_kind_the_issue_lists_exists():
    kinds = set(AuditEvent.Kind.values)
    assert {
        "consent_granted",
        "consent_denied",
        "code_issued",
        "token_issued",
        "code_replay",
        "grant_revoked",
        "key_created",
        "key_revoked",
        "kek_rotated",
        "login_throttled",
    } <= kinds


def test_a_throttled_login_is_shown(operator_client, alice):
    audit_record(
        kind=AuditEvent.Kind.LOGIN_THROTTLED,
        context=SYSTEM,
        actor_kind="system",
        subject=alice,
        detail={"failures": 10},
    )
    page = operator_client.get(EVENTS + "?kind__exact=login_throttled").content.decode()
    assert "Login throttled" in page and ">alice<" in page
