"""Every state-changing form is a POST protected against cross-site request forgery."""

import pytest
from django.contrib.auth.tokens import default_token_generator
from django.test import Client
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from accounts.models import ApiKey, User
from tests.conftest import csrf_token_of


@pytest.fixture(autouse=True)
def _signup_open(settings):
    settings.SIGNUP_ENABLED = True


def test_creating_renaming_and_revoking_keys_need_the_csrf_token(strict_alice, alice_key):
    key, _ = alice_key
    assert strict_alice.post("/keys/new/", {"name": "forged"}).status_code == 403
    assert strict_alice.post(f"/keys/{key.pk}/rename/", {"name": "forged"}).status_code == 403
    assert strict_alice.post(f"/keys/{key.pk}/revoke/").status_code == 403
    key.refresh_from_db()
    assert key.name == "laptop" and key.is_active
    assert ApiKey.objects.count() == 1


def test_the_key_forms_work_with_the_token_from_the_page(strict_alice, alice_key):
    key, _ = alice_key
    token = csrf_token_of(strict_alice.get("/keys/"))
    assert strict_alice.post("/keys/new/", {"name": "real", "csrfmiddlewaretoken": token}).status_code == 200
    token = csrf_token_of(strict_alice.get(f"/keys/{key.pk}/revoke/"))
    assert strict_alice.post(f"/keys/{key.pk}/revoke/", {"csrfmiddlewaretoken": token}).status_code == 302


def test_signing_in_signing_up_and_signing_out_need_the_csrf_token(alice):
    browser = Client(enforce_csrf_checks=True)
    assert browser.post("/accounts/login/", {"username": "alice", "password": "alice-password"}).status_code == 403
    data = {
        "username": "carol",
        "email": "c@example.com",
        "password1": "a long passphrase",
        "password2": "a long passphrase",
    }
    assert browser.post("/accounts/signup/", data).status_code == 403
    assert not User.objects.filter(username="carol").exists()

    signed_in = Client(enforce_csrf_checks=True)
    signed_in.force_login(alice)
    assert signed_in.post("/accounts/logout/").status_code == 403
    assert signed_in.get("/keys/").status_code == 200  # still signed in


def test_password_forms_need_the_csrf_token(strict_alice, alice, mailoutbox):
    change = {
        "old_password": "alice-password",
        "new_password1": "forged passphrase",
        "new_password2": "forged passphrase",
    }
    assert strict_alice.post("/accounts/password/change/", change).status_code == 403
    assert (
        Client(enforce_csrf_checks=True).post("/accounts/password/reset/", {"email": "alice@example.com"}).status_code
        == 403
    )
    assert mailoutbox == []

    browser = Client(enforce_csrf_checks=True)
    uid = urlsafe_base64_encode(force_bytes(alice.pk))
    to_form = browser.get(f"/accounts/password/reset/{uid}/{default_token_generator.make_token(alice)}/")
    new = {"new_password1": "forged passphrase", "new_password2": "forged passphrase"}
    assert browser.post(to_form["Location"], new).status_code == 403
    alice.refresh_from_db()
    assert alice.check_password("alice-password")
