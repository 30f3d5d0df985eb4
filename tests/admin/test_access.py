"""Only staff reach the admin."""

import pytest
from django.test import Client
from django.urls import reverse

PAGES = [
    "admin:index",
    "admin:accounts_user_changelist",
    "admin:accounts_apikey_changelist",
    "admin:accounts_auditevent_changelist",
    "admin:oauthprovider_grant_changelist",
    "admin:oauthprovider_authorizationcode_changelist",
]


@pytest.mark.parametrize("name", PAGES)
def test_a_non_staff_user_is_sent_to_the_admin_login(alice_client, name):
    response = alice_client.get(reverse(name))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))


@pytest.mark.parametrize("name", PAGES)
def test_an_anonymous_visitor_is_sent_to_the_admin_login(db, name):
    response = Client().get(reverse(name))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))


def test_a_non_staff_user_cannot_run_an_action(alice_client, grant_with_new_key):
    response = alice_client.post(
        reverse("admin:oauthprovider_grant_changelist"),
        {"action": "revoke_grants", "_selected_action": [grant_with_new_key.pk], "post": "yes"},
    )
    assert response.status_code == 302
    grant_with_new_key.refresh_from_db()
    assert grant_with_new_key.is_active


def test_the_admin_login_is_throttled_like_the_site_login():
    from django.contrib import admin

    from accounts.forms import ThrottledAdminAuthenticationForm

    assert admin.site.login_form is ThrottledAdminAuthenticationForm
