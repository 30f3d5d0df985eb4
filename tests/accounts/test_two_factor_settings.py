"""Setting second factors up and removing them on the security page, recovery codes, the re-check before
sensitive changes (REAUTH_MAX_AGE_SECONDS), and who must have a second factor (TWO_FACTOR_REQUIRED)."""

import re
import time

import pytest
from django.contrib.auth import SESSION_KEY
from django.test import Client

from accounts import signin
from accounts.models import AuditEvent, Notification, Passkey, RecoveryCode, TotpDevice, User
from accounts.second_factor import totp_code_at
from tests.accounts.conftest import LOGIN_URL, sign_in
from tests.accounts.factors import VERIFY_URL, next_code, password_step, recovery_codes_on, with_totp
from tests.conftest import authorize_params, authorize_url, force_login_with_second_factor

SECURITY = "/accounts/security/"
TOTP_SETUP = "/accounts/security/authenticator/"
TOTP_REMOVE = "/accounts/security/authenticator/remove/"
RECHECK = "/accounts/confirm/"


def secret_on(page) -> str:
    match = re.search(r'data-testid="totp-secret">([A-Z2-7 ]+)<', page.content.decode())
    assert match, "the set-up page shows the secret for typing it in"
    return match.group(1).replace(" ", "")


def add_passkey_row(user: User, name: str = "laptop") -> Passkey:
    return Passkey.objects.create(
        user=user, name=name, credential_id=f"cred-{name}", public_key=b"\x01", user_handle="handle"
    )


# --- Setting up an authenticator app ------------------------------------------------------------


def test_the_security_page_offers_passkeys_and_an_authenticator_app(alice_client, settings):
    assert "Passkeys need this site to be reached by a host name" in alice_client.get(SECURITY).content.decode()
    settings.OAUTH_ISSUER = "https://keys.example.com"
    page = alice_client.get(SECURITY)
    assert page.status_code == 200
    html = page.content.decode()
    assert "Set up an authenticator app" in html and "Add a passkey" in html
    assert 'href="/accounts/security/"' in alice_client.get("/keys/").content.decode()  # in the navigation


def test_setting_up_an_authenticator_shows_a_qr_code_drawn_here_and_needs_a_first_code(alice, alice_client, clock):
    page = alice_client.get(TOTP_SETUP)
    assert page.status_code == 200 and page["Cache-Control"].startswith("no-store")
    html = page.content.decode()
    assert "<svg" in html and "http" not in html.split('data-testid="totp-qr"')[1].split("</div>")[0].replace(
        "http://www.w3.org", ""
    )
    secret = secret_on(page)
    assert not TotpDevice.objects.get(user=alice).is_confirmed  # nothing counts before the first code
    wrong = alice_client.post(TOTP_SETUP, {"code": "000000"})
    assert wrong.status_code == 400 and "That code is not right" in wrong.content.decode()
    assert secret_on(wrong) == secret  # the same secret until it is confirmed
    done = alice_client.post(TOTP_SETUP, {"code": totp_code_at(secret, time.time())})
    assert done.status_code == 200 and done["Cache-Control"].startswith("no-store")
    codes = recovery_codes_on(done)
    assert len(codes) == 10
    assert TotpDevice.objects.get(user=alice).is_confirmed
    # Shown once: the security page tells how many are left, never the codes.
    security = alice_client.get(SECURITY).content.decode()
    assert all(code not in security for code in codes)
    assert 'data-testid="recovery-codes-left">10<' in security


def test_an_added_factor_is_audited_and_mailed_without_its_secret(alice, alice_client, clock):
    secret = secret_on(alice_client.get(TOTP_SETUP))
    alice_client.post(TOTP_SETUP, {"code": totp_code_at(secret, time.time())})
    added = AuditEvent.objects.get(kind=AuditEvent.Kind.FACTOR_ADDED)
    assert added.subject == alice and added.detail == {"factor": "totp"}
    assert AuditEvent.objects.filter(kind=AuditEvent.Kind.RECOVERY_CODES_GENERATED, subject=alice).count() == 1
    notice = Notification.objects.get(kind=Notification.Kind.FACTOR_CHANGED)
    assert "You added an authenticator app" in notice.subject
    assert secret not in notice.body and secret not in str(added.detail)


def test_the_authenticator_page_without_a_session_sends_to_sign_in(db):
    assert Client().get(TOTP_SETUP)["Location"].startswith(LOGIN_URL)
    assert Client().post(TOTP_SETUP, {"code": "123456"})["Location"].startswith(LOGIN_URL)


# --- The re-check before sensitive changes ---------------------------------------------------------


@pytest.fixture
def alice_with_app(alice, clock):
    secret, codes = with_totp(alice)
    return secret, codes


def signed_in_with_factor(user: User) -> Client:
    return force_login_with_second_factor(Client(), user)


def test_removing_the_app_asks_for_the_second_factor_again_when_the_last_check_is_old(
    alice, alice_with_app, clock, settings
):
    secret, _ = alice_with_app
    client = signed_in_with_factor(alice)
    assert client.get(TOTP_REMOVE).status_code == 200  # checked just now
    clock.advance(settings.REAUTH_MAX_AGE_SECONDS + 1)
    asked = client.get(TOTP_REMOVE)
    assert asked["Location"] == RECHECK + "?next=%2Faccounts%2Fsecurity%2Fauthenticator%2Fremove%2F"
    assert client.post(TOTP_REMOVE)["Location"].startswith(RECHECK)
    assert TotpDevice.objects.filter(user=alice).exists()
    page = client.get(asked["Location"])
    assert page.status_code == 200 and "Confirm it" in page.content.decode()
    back = client.post(RECHECK, {"code": totp_code_at(secret, time.time()), "next": TOTP_REMOVE})
    assert back["Location"] == TOTP_REMOVE
    assert client.post(TOTP_REMOVE)["Location"] == SECURITY
    assert not TotpDevice.objects.filter(user=alice).exists()
    removed = AuditEvent.objects.get(kind=AuditEvent.Kind.FACTOR_REMOVED)
    assert removed.detail["factor"] == "totp" and removed.detail["recovery_codes_removed"] == 10
    assert not RecoveryCode.objects.filter(user=alice).exists()  # nothing left to recover
    assert "You removed an authenticator app" in Notification.objects.filter(kind="factor_changed").first().subject


def test_a_session_forced_without_a_check_time_is_asked_too(alice, alice_with_app):
    client = Client()
    client.force_login(alice)
    assert client.get(TOTP_REMOVE)["Location"].startswith(RECHECK)


def test_creating_a_key_asks_again_when_the_last_check_is_old(alice, alice_with_app, clock, settings):
    client = signed_in_with_factor(alice)
    clock.advance(settings.REAUTH_MAX_AGE_SECONDS + 1)
    response = client.post("/keys/new/", {"name": "ci", "expiry": "never"})
    assert response.status_code == 302 and response["Location"] == RECHECK + "?next=%2Fkeys%2F"
    assert not alice.api_keys.exists()


def test_changing_the_password_asks_again_when_the_last_check_is_old(alice, alice_with_app, clock, settings):
    client = signed_in_with_factor(alice)
    assert client.get("/accounts/password/change/").status_code == 200
    clock.advance(settings.REAUTH_MAX_AGE_SECONDS + 1)
    assert client.get("/accounts/password/change/")["Location"].startswith(RECHECK)
    data = {"old_password": "alice-password", "new_password1": "another passphrase", "new_password2": "x"}
    assert client.post("/accounts/password/change/", data)["Location"].startswith(RECHECK)


def test_accounts_without_a_second_factor_are_not_asked_again(alice_client, clock, settings):
    clock.advance(settings.REAUTH_MAX_AGE_SECONDS + 1)
    assert alice_client.post("/keys/new/", {"name": "ci", "expiry": "never"}).status_code == 200


def test_the_recheck_is_throttled_and_audited_like_the_sign_in(alice, alice_with_app, clock, settings):
    client = signed_in_with_factor(alice)
    for _ in range(settings.LOGIN_THROTTLE_USERNAME_SLOWDOWN_AFTER - 1):
        assert client.post(RECHECK, {"code": "000000"}).status_code == 400
    assert client.post(RECHECK, {"code": "000000"}).status_code == 429
    failures = AuditEvent.objects.filter(kind=AuditEvent.Kind.SECOND_FACTOR_FAILED)
    assert {e.detail["purpose"] for e in failures} == {"recheck"}


def test_the_recheck_returns_only_to_a_path_on_this_site(alice, alice_with_app, clock):
    secret, _ = alice_with_app
    client = signed_in_with_factor(alice)
    response = client.post(RECHECK, {"code": next_code(secret, clock), "next": "//evil.example/"})
    assert response["Location"] == SECURITY


def test_the_last_factor_of_an_account_that_must_have_one_cannot_be_removed(alice, alice_with_app, settings):
    settings.TWO_FACTOR_REQUIRED = "all"
    client = signed_in_with_factor(alice)
    response = client.post(TOTP_REMOVE)
    assert response["Location"] == SECURITY
    assert TotpDevice.objects.filter(user=alice).exists()
    add_passkey_row(alice)
    assert client.post(TOTP_REMOVE)["Location"] == SECURITY
    assert not TotpDevice.objects.filter(user=alice).exists()  # a passkey is left


def test_new_recovery_codes_replace_the_old_ones(alice, alice_with_app):
    _, old = alice_with_app
    client = signed_in_with_factor(alice)
    page = client.post("/accounts/security/recovery-codes/")
    new = recovery_codes_on(page)
    assert len(new) == 10 and not set(new) & set(old)
    assert page["Cache-Control"].startswith("no-store")
    other = Client()
    password_step(other, alice)
    assert other.post(VERIFY_URL, {"code": old[0]}).status_code == 400
    assert other.post(VERIFY_URL, {"code": new[0]}).status_code == 302
    assert "new recovery codes" in Notification.objects.filter(kind="factor_changed").first().subject


def test_someone_else_s_passkey_cannot_be_removed(alice, bob, clock):
    with_totp(alice)
    bobs = add_passkey_row(bob, "bob's key")
    client = signed_in_with_factor(alice)
    assert client.post(f"/accounts/security/passkeys/{bobs.pk}/remove/").status_code == 404
    assert Passkey.objects.filter(pk=bobs.pk).exists()


def test_removing_a_passkey_is_audited_and_mailed(alice, clock):
    passkey = add_passkey_row(alice, "old phone")
    client = signed_in_with_factor(alice)
    assert "old phone" in client.get(f"/accounts/security/passkeys/{passkey.pk}/remove/").content.decode()
    assert client.post(f"/accounts/security/passkeys/{passkey.pk}/remove/")["Location"] == SECURITY
    event = AuditEvent.objects.get(kind=AuditEvent.Kind.FACTOR_REMOVED)
    assert event.detail["factor"] == "passkey" and event.detail["name"] == "old phone"
    assert "old phone" in Notification.objects.get(kind="factor_changed").subject


# --- TWO_FACTOR_REQUIRED ----------------------------------------------------------------------------


@pytest.fixture
def staff(db) -> User:
    return User.objects.create_user(username="sam", password="sam-password", email="sam@example.com", is_staff=True)


def test_by_default_staff_must_have_a_second_factor_and_others_need_not(settings):
    assert settings.TWO_FACTOR_REQUIRED == "staff"


def test_staff_without_a_factor_set_one_up_before_anything_else_and_then_go_on(staff, clock, pkce_pair):
    client = Client()
    url = authorize_url(authorize_params(pkce_pair))
    response = sign_in(client, "sam", "sam-password", next=url)
    assert response["Location"] == SECURITY
    assert client.session.get(SESSION_KEY) is None  # not signed in yet
    assert 'data-testid="enrol-notice"' in client.get(SECURITY).content.decode()
    assert client.get("/keys/")["Location"].startswith(LOGIN_URL)
    assert client.get(url)["Location"].startswith(LOGIN_URL)
    secret = secret_on(client.get(TOTP_SETUP))
    done = client.post(TOTP_SETUP, {"code": totp_code_at(secret, time.time())})
    assert done.status_code == 200 and len(recovery_codes_on(done)) == 10
    assert f'href="{url.replace("&", "&amp;")}"' in done.content.decode()  # "continue" goes back to the request
    assert client.session[SESSION_KEY] == str(staff.pk) and client.session[signin.SECOND_FACTOR] == "totp"
    assert client.get(url).status_code == 200  # the consent page


def test_a_staff_session_signed_in_without_a_factor_counts_as_signed_out(staff):
    client = Client()
    client.force_login(staff)
    assert client.get("/keys/")["Location"].startswith(LOGIN_URL)
    assert client.get("/admin/")["Location"].startswith("/admin/login/")


def test_with_none_staff_sign_in_with_a_password_alone(staff, settings):
    settings.TWO_FACTOR_REQUIRED = "none"
    client = Client()
    assert sign_in(client, "sam", "sam-password")["Location"] == "/"
    assert client.get("/keys/").status_code == 200


def test_with_all_everyone_must_set_one_up(alice, settings):
    settings.TWO_FACTOR_REQUIRED = "all"
    client = Client()
    assert sign_in(client, "alice", "alice-password")["Location"] == SECURITY
    assert client.session.get(SESSION_KEY) is None


def test_with_all_a_new_account_sets_a_factor_up_before_it_is_signed_in(db, settings, clock):
    settings.TWO_FACTOR_REQUIRED = "all"
    client = Client()
    data = {
        "username": "newbie",
        "email": "n@example.com",
        "password1": "a long passphrase",
        "password2": "a long passphrase",
    }
    response = client.post("/accounts/signup/?next=/apps/", {**data, "next": "/apps/"})
    assert response["Location"] == SECURITY and client.session.get(SESSION_KEY) is None
    secret = secret_on(client.get(TOTP_SETUP))
    done = client.post(TOTP_SETUP, {"code": totp_code_at(secret, time.time())})
    assert 'href="/apps/"' in done.content.decode()
    assert client.get("/apps/").status_code == 200
