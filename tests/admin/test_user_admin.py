"""Users in the admin: the custom model, with links to their keys, grants and events."""

import pytest
from django.core.management import call_command
from django.urls import reverse

from accounts.models import User


def test_the_user_page_links_to_keys_grants_and_events(operator_client, alice, grant_with_new_key):
    page = operator_client.get(reverse("admin:accounts_user_change", args=[alice.pk])).content.decode()
    keys = f"{reverse('admin:accounts_apikey_changelist')}?user__id__exact={alice.pk}"
    grants = f"{reverse('admin:oauthprovider_grant_changelist')}?user__id__exact={alice.pk}"
    events = f"{reverse('admin:accounts_auditevent_changelist')}?subject__id__exact={alice.pk}"
    for url in (keys, grants, events):
        assert url.replace("&", "&amp;") in page
        assert operator_client.get(url).status_code == 200


def test_the_linked_lists_show_only_that_users_rows(operator_client, alice, bob, grant_with_new_key):
    from accounts.audit import SYSTEM
    from accounts.services import key_create

    key_create(user=bob, name="bobs-key", context=SYSTEM)
    for name, param in (("accounts_apikey", "user__id__exact"), ("accounts_auditevent", "subject__id__exact")):
        page = operator_client.get(f"{reverse(f'admin:{name}_changelist')}?{param}={alice.pk}").content.decode()
        assert "bobs-key" not in page and ">bob<" not in page
        page = operator_client.get(f"{reverse(f'admin:{name}_changelist')}?{param}={bob.pk}").content.decode()
        assert "yourapp.com" not in page


def test_the_user_list_links_too(operator_client, alice):
    page = operator_client.get(reverse("admin:accounts_user_changelist")).content.decode()
    assert f"user__id__exact={alice.pk}" in page


def test_an_admin_page_links_to_the_actions_they_took(operator_client, operator):
    page = operator_client.get(reverse("admin:accounts_user_change", args=[operator.pk])).content.decode()
    assert f"actor__id__exact={operator.pk}" in page


def test_a_user_can_be_added_through_admin(operator_client):
    response = operator_client.post(
        reverse("admin:accounts_user_add"),
        {
            "username": "carol",
            "password1": "a-long-passphrase-42",
            "password2": "a-long-passphrase-42",
            "usable_password": "true",
        },
    )
    assert response.status_code == 302
    assert User.objects.filter(username="carol").exists()


def test_createsuperuser_noinput_works_with_the_custom_user_model(db, monkeypatch):
    monkeypatch.setenv("DJANGO_SUPERUSER_USERNAME", "root")
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", "a-long-passphrase-42")
    monkeypatch.setenv("DJANGO_SUPERUSER_EMAIL", "root@example.com")
    call_command("createsuperuser", interactive=False, verbosity=0)
    root = User.objects.get(username="root")
    assert root.is_superuser and root.is_staff and root.check_password("a-long-passphrase-42")


@pytest.mark.parametrize("field", ["password", "key_hash"])
def test_the_user_page_never_shows_hashes(operator_client, alice, alice_key, field):
    page = operator_client.get(reverse("admin:accounts_user_change", args=[alice.pk])).content.decode()
    assert alice_key[0].key_hash not in page
    assert alice.password not in page
