"""The revoke actions follow DESIGN.md "Grants": confirm first, then revoke and record."""

from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.messages import get_messages
from django.urls import reverse

from accounts.models import ApiKey, AuditEvent
from oauthprovider.models import Grant

GRANTS = reverse("admin:oauthprovider_grant_changelist")
KEYS = reverse("admin:accounts_apikey_changelist")


def run_action(client, url, action, pks, *, confirm: bool, field: str = "action"):
    data = {field: action, ACTION_CHECKBOX_NAME: [str(pk) for pk in pks]}
    if field == "action":
        data["index"] = "0"
    if confirm:
        data.pop("index", None)
        data["post"] = "yes"
    return client.post(url, data)


def messages_of(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def refreshed(obj):
    obj.refresh_from_db()
    return obj


def test_revoke_grant_asks_for_confirmation_first(operator_client, grant_with_existing_key):
    response = run_action(operator_client, GRANTS, "revoke_grants", [grant_with_existing_key.pk], confirm=False)
    assert response.status_code == 200
    page = response.content.decode()
    assert "Revoke grants" in page
    assert "alice → yourapp.com" in page
    assert "stays active" in page
    assert "the user may use it elsewhere" in page
    assert 'name="post" value="yes"' in page
    assert refreshed(grant_with_existing_key).is_active
    assert not AuditEvent.objects.filter(kind=AuditEvent.Kind.GRANT_REVOKED).exists()


def test_revoke_grant_revokes_the_key_its_consent_created(operator_client, operator, grant_with_new_key):
    key = grant_with_new_key.key
    response = run_action(operator_client, GRANTS, "revoke_grants", [grant_with_new_key.pk], confirm=True)
    assert response.status_code == 302
    grant = refreshed(grant_with_new_key)
    assert not grant.is_active
    assert grant.revoked_by == Grant.RevokedBy.ADMIN
    assert grant.revoked_by_user == operator
    assert not refreshed(key).is_active
    assert "Revoked 1 grant and 1 key." in messages_of(response)


def test_revoke_grant_leaves_a_pre_existing_key_active(operator_client, grant_with_existing_key, alice_key):
    response = run_action(operator_client, GRANTS, "revoke_grants", [grant_with_existing_key.pk], confirm=True)
    assert not refreshed(grant_with_existing_key).is_active
    assert refreshed(alice_key[0]).is_active
    assert "Revoked 1 grant and 0 keys." in messages_of(response)


def test_revoke_grant_and_its_key_revokes_the_pre_existing_key(operator_client, grant_with_existing_key, alice_key):
    page = run_action(
        operator_client, GRANTS, "revoke_grants_and_keys", [grant_with_existing_key.pk], confirm=False
    ).content.decode()
    assert "will be revoked too" in page
    response = run_action(operator_client, GRANTS, "revoke_grants_and_keys", [grant_with_existing_key.pk], confirm=True)
    assert not refreshed(grant_with_existing_key).is_active
    assert not refreshed(alice_key[0]).is_active
    assert "Revoked 1 grant and 1 key." in messages_of(response)


def test_the_second_action_also_revokes_the_key_of_an_already_revoked_grant(
    operator_client, grant_with_existing_key, alice_key
):
    run_action(operator_client, GRANTS, "revoke_grants", [grant_with_existing_key.pk], confirm=True)
    response = run_action(operator_client, GRANTS, "revoke_grants_and_keys", [grant_with_existing_key.pk], confirm=True)
    assert not refreshed(alice_key[0]).is_active
    assert messages_of(response)[-2:] == ["Revoked 0 grants and 1 key.", "1 grant was already revoked."]


def test_revoking_writes_audit_events_with_the_admin_as_actor(operator_client, operator, alice, grant_with_new_key):
    run_action(operator_client, GRANTS, "revoke_grants", [grant_with_new_key.pk], confirm=True)
    grant_event = AuditEvent.objects.get(kind=AuditEvent.Kind.GRANT_REVOKED)
    assert grant_event.actor_kind == AuditEvent.Actor.ADMIN
    assert grant_event.actor == operator
    assert grant_event.subject == alice
    assert grant_event.client_id == "yourapp.com"
    assert grant_event.ip_address == "192.0.2.10"
    assert grant_event.user_agent == "operator-browser"
    assert grant_event.detail["by"] == "admin"
    key_event = AuditEvent.objects.get(kind=AuditEvent.Kind.KEY_REVOKED)
    assert key_event.actor == operator and key_event.key_prefix == grant_with_new_key.key.prefix


def test_several_grants_are_revoked_at_once(operator_client, alice_client, bob, grant_with_new_key):
    from tests.admin.conftest import consent

    other = consent(alice_client, client_id="other.example")
    response = run_action(operator_client, GRANTS, "revoke_grants", [grant_with_new_key.pk, other.pk], confirm=True)
    assert Grant.objects.filter(revoked_at__isnull=True).count() == 0
    assert "Revoked 2 grants and 2 keys." in messages_of(response)


def test_a_grant_is_revoked_from_its_own_page(operator_client, grant_with_new_key):
    url = reverse("admin:oauthprovider_grant_change", args=[grant_with_new_key.pk])
    page = operator_client.get(url).content.decode()
    assert "Revoke grant and its key" in page
    confirm = run_action(
        operator_client, url, "revoke_grants", [grant_with_new_key.pk], confirm=False, field="CHANGE_FORM-action"
    )
    assert confirm.status_code == 200
    assert 'name="CHANGE_FORM-action" value="revoke_grants"' in confirm.content.decode()
    response = run_action(
        operator_client, url, "revoke_grants", [grant_with_new_key.pk], confirm=True, field="CHANGE_FORM-action"
    )
    assert response.status_code == 302 and response["Location"] == url
    assert not refreshed(grant_with_new_key).is_active


def test_grants_cannot_be_added_edited_or_deleted(operator_client, grant_with_new_key):
    change = reverse("admin:oauthprovider_grant_change", args=[grant_with_new_key.pk])
    assert operator_client.get(reverse("admin:oauthprovider_grant_add")).status_code == 403
    assert operator_client.post(change, {"scope": "everything", "_save": "Save"}).status_code == 403
    assert (
        operator_client.post(
            reverse("admin:oauthprovider_grant_delete", args=[grant_with_new_key.pk]), {"post": "yes"}
        ).status_code
        == 403
    )
    assert refreshed(grant_with_new_key).scope == "key:read"
    assert "delete_selected" not in operator_client.get(GRANTS).content.decode()


def test_revoke_keys_asks_then_revokes_and_records(operator_client, operator, alice_key):
    key = alice_key[0]
    confirm = run_action(operator_client, KEYS, "revoke_keys", [key.pk], confirm=False)
    assert confirm.status_code == 200 and "takes effect at once" in confirm.content.decode()
    assert refreshed(key).is_active
    response = run_action(operator_client, KEYS, "revoke_keys", [key.pk], confirm=True)
    assert not refreshed(key).is_active
    assert "Revoked 1 key." in messages_of(response)
    event = AuditEvent.objects.get(kind=AuditEvent.Kind.KEY_REVOKED)
    assert event.actor == operator and event.actor_kind == AuditEvent.Actor.ADMIN
    assert event.key_prefix == key.prefix


def test_keys_cannot_be_added_edited_or_deleted(operator_client, alice_key):
    key = alice_key[0]
    assert operator_client.get(reverse("admin:accounts_apikey_add")).status_code == 403
    change = reverse("admin:accounts_apikey_change", args=[key.pk])
    assert operator_client.post(change, {"name": "renamed", "_save": "Save"}).status_code == 403
    assert (
        operator_client.post(reverse("admin:accounts_apikey_delete", args=[key.pk]), {"post": "yes"}).status_code == 403
    )
    assert ApiKey.objects.get(pk=key.pk).name == "laptop"


def test_codes_are_read_only(operator_client, grant_with_new_key):
    code = grant_with_new_key.codes.get()
    change = reverse("admin:oauthprovider_authorizationcode_change", args=[code.pk])
    page = operator_client.get(change).content.decode()
    assert code.code_hash not in page and code.code_challenge not in page
    assert "pending" in page
    assert operator_client.post(change, {"failed_attempts": "0", "_save": "Save"}).status_code == 403
    assert (
        operator_client.post(
            reverse("admin:oauthprovider_authorizationcode_delete", args=[code.pk]), {"post": "yes"}
        ).status_code
        == 403
    )
    assert operator_client.get(reverse("admin:oauthprovider_authorizationcode_add")).status_code == 403


def test_a_staff_member_without_permission_cannot_revoke(grant_with_new_key, db):
    from django.contrib.auth.models import Permission
    from django.test import Client

    from tests.conftest import force_login_with_second_factor, make_user

    viewer = make_user("viewer")
    viewer.is_staff = True
    viewer.save()
    viewer.user_permissions.add(Permission.objects.get(codename="view_grant"))
    client = force_login_with_second_factor(Client(), viewer)
    assert client.get(GRANTS).status_code == 200
    assert "revoke_grants" not in client.get(GRANTS).content.decode()
    run_action(client, GRANTS, "revoke_grants", [grant_with_new_key.pk], confirm=True)
    assert refreshed(grant_with_new_key).is_active
