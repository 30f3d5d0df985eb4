"""No admin page shows a key, its hash or its ciphertext (DESIGN.md "API keys")."""

from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.urls import reverse

from accounts.audit import SYSTEM
from accounts.models import ApiKey, AuditEvent, User
from accounts.services import key_create
from oauthprovider.models import AuthorizationCode, Grant
from tests.admin.conftest import consent


def test_no_admin_page_contains_a_key_or_its_stored_forms(operator_client, alice, alice_client, alice_key):
    raw_keys = [alice_key[1], key_create(user=alice, name="second", context=SYSTEM)[1]]
    consent(alice_client)  # a key created by consent, handed out once
    consent(alice_client, client_id="other.example", key=str(alice_key[0].pk))
    raw_keys += [k.plaintext() for k in ApiKey.objects.all()]
    secrets = set(raw_keys)
    for key in ApiKey.objects.all():
        secrets |= {key.key_hash, key.key_encrypted}
    secrets |= set(AuthorizationCode.objects.values_list("code_hash", flat=True))

    urls = []
    for model, name in (
        (User, "accounts_user"),
        (ApiKey, "accounts_apikey"),
        (AuditEvent, "accounts_auditevent"),
        (Grant, "oauthprovider_grant"),
        (AuthorizationCode, "oauthprovider_authorizationcode"),
    ):
        urls.append(reverse(f"admin:{name}_changelist"))
        urls += [reverse(f"admin:{name}_change", args=[pk]) for pk in model.objects.values_list("pk", flat=True)]
        urls.append(reverse(f"admin:{name}_changelist") + "?q=kg_")
    urls.append(reverse("admin:index"))

    pages = [operator_client.get(url) for url in urls]
    grants = list(Grant.objects.values_list("pk", flat=True))
    keys = list(ApiKey.objects.values_list("pk", flat=True))
    pages += [
        operator_client.post(
            reverse("admin:oauthprovider_grant_changelist"),
            {"action": action, ACTION_CHECKBOX_NAME: grants, "index": "0"},
        )
        for action in ("revoke_grants", "revoke_grants_and_keys")
    ]
    pages.append(
        operator_client.post(
            reverse("admin:accounts_apikey_changelist"),
            {"action": "revoke_keys", ACTION_CHECKBOX_NAME: keys, "index": "0"},
        )
    )
    for response in pages:
        assert response.status_code == 200
        body = response.content.decode()
        for secret in secrets:
            assert secret not in body, f"{response.wsgi_request.path} shows a secret"
        # The masked prefix is what identifies a key.
    assert any(alice_key[0].prefix in r.content.decode() for r in pages)
