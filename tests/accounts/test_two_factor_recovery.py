"""Recovery never bypasses a second factor silently: a password reset still asks for it (or a recovery
code), an operator's reset is audited and mailed with a reason; the admin login takes the same second step;
hostile input to the passkey endpoints is refused, never a 500."""

import json
import re

import pytest
from django.contrib.auth import SESSION_KEY
from django.core.management import CommandError, call_command
from django.test import Client

from accounts.models import AuditEvent, Notification, Passkey, RecoveryCode, TotpDevice, User
from tests.accounts.factors import VERIFY_URL, next_code, with_totp
from tests.conftest import make_user

RESET_URL = "/accounts/password/reset/"


def reset_form_url(client: Client, outbox) -> str:
    assert client.post(RESET_URL, {"email": "alice@example.com"}).status_code == 302
    link = re.search(r"(/accounts/password/reset/\S+/\S+/)", outbox[-1].body).group(1)
    to_form = client.get(link)
    assert to_form.status_code == 302
    return to_form["Location"]


NEW = {"new_password1": "reset passphrase 42", "new_password2": "reset passphrase 42"}


def can_sign_in_with(password: str) -> bool:
    return Client().post("/accounts/login/", {"username": "alice", "password": password}).status_code == 302


def test_a_password_reset_of_an_account_with_a_factor_asks_for_it(alice, clock, mailoutbox):
    secret, _ = with_totp(alice)
    client = Client()
    form_url = reset_form_url(client, mailoutbox)
    page = client.get(form_url).content.decode()
    assert "a reset link alone does not change the password" in page
    missing = client.post(form_url, NEW)
    assert missing.status_code == 200 and "Enter a code, or use your passkey." in missing.content.decode()
    wrong = client.post(form_url, {**NEW, "code": "000000"})
    assert "That code is not right." in wrong.content.decode()
    assert not can_sign_in_with("reset passphrase 42")
    done = client.post(form_url, {**NEW, "code": next_code(secret, clock)})
    assert done["Location"] == "/accounts/password/reset/done/"
    assert client.session.get(SESSION_KEY) is None  # the link never signs anyone in
    assert can_sign_in_with("reset passphrase 42")  # ...to the second step, as always


def test_a_password_reset_accepts_a_recovery_code_and_tells_the_person(alice, clock, mailoutbox):
    _, codes = with_totp(alice)
    client = Client()
    form_url = reset_form_url(client, mailoutbox)
    assert client.post(form_url, {**NEW, "code": codes[3]})["Location"] == "/accounts/password/reset/done/"
    event = AuditEvent.objects.get(kind=AuditEvent.Kind.RECOVERY_CODE_USED)
    assert event.detail["purpose"] == "password_reset"
    assert Notification.objects.filter(kind=Notification.Kind.RECOVERY_CODE_USED).exists()


def test_a_mistyped_new_password_does_not_use_up_the_code(alice, clock, mailoutbox):
    _, codes = with_totp(alice)
    client = Client()
    form_url = reset_form_url(client, mailoutbox)
    mismatch = client.post(form_url, {"new_password1": "one passphrase", "new_password2": "another", "code": codes[0]})
    assert mismatch.status_code == 200
    assert not RecoveryCode.objects.filter(used_at__isnull=False).exists()


def test_a_password_reset_of_an_account_without_a_factor_is_as_before(alice, mailoutbox):
    client = Client()
    form_url = reset_form_url(client, mailoutbox)
    assert 'name="code"' not in client.get(form_url).content.decode()
    assert client.post(form_url, NEW)["Location"] == "/accounts/password/reset/done/"


# --- The operator's recovery ----------------------------------------------------------------------


def test_an_operator_removes_a_person_s_factors_with_a_reason_audited_and_mailed(alice, clock):
    with_totp(alice)
    Passkey.objects.create(user=alice, name="lost phone", credential_id="c", public_key=b"k", user_handle="h")
    out = call_command("reset_second_factors", "alice", "--reason", "lost phone; checked ID, ticket 4711")
    assert out is None
    assert not TotpDevice.objects.filter(user=alice).exists()
    assert not Passkey.objects.filter(user=alice).exists() and not RecoveryCode.objects.filter(user=alice).exists()
    event = AuditEvent.objects.get(kind=AuditEvent.Kind.FACTORS_RESET)
    assert event.subject == alice and event.actor_kind == AuditEvent.Actor.ADMIN
    assert event.detail == {
        "totp": 1,
        "passkeys": 1,
        "recovery_codes": 10,
        "reason": "lost phone; checked ID, ticket 4711",
    }
    notice = Notification.objects.filter(kind=Notification.Kind.FACTOR_CHANGED).first()
    assert "An administrator removed" in notice.subject and "ticket 4711" in notice.body
    assert Client().post("/accounts/login/", {"username": "alice", "password": "alice-password"})["Location"] == "/"


@pytest.mark.parametrize("reason", ["", "   "])
def test_an_operator_reset_needs_a_reason(alice, clock, reason):
    with_totp(alice)
    with pytest.raises(CommandError):
        call_command("reset_second_factors", "alice", "--reason", reason)
    assert TotpDevice.objects.filter(user=alice).exists()


def test_an_operator_reset_of_an_unknown_user_is_an_error(db):
    with pytest.raises(CommandError):
        call_command("reset_second_factors", "nobody", "--reason", "x")


def test_the_admin_shows_what_protects_an_account_and_no_secret(alice, clock, admin_client):
    secret, codes = with_totp(alice)
    page = admin_client.get(f"/admin/accounts/user/{alice.pk}/change/").content.decode()
    assert "0 passkeys, authenticator app on, 10 unused recovery codes" in page
    assert secret not in page and all(code not in page for code in codes)


# --- The admin login --------------------------------------------------------------------------------


@pytest.fixture
def operator_with_app(db, clock) -> tuple[User, str]:
    operator = User.objects.create_superuser(username="root", email="root@example.com", password="root-password")
    secret, _ = with_totp(operator)
    return operator, secret


def test_the_admin_login_takes_the_second_step_and_comes_back_to_the_admin(operator_with_app, clock):
    operator, secret = operator_with_app
    client = Client()
    assert client.get("/admin/")["Location"].startswith("/admin/login/")
    page = client.get("/admin/login/?next=/admin/accounts/user/")
    assert page.status_code == 200 and 'name="password"' in page.content.decode()
    response = client.post(
        "/admin/login/?next=/admin/accounts/user/",
        {"username": "root", "password": "root-password", "next": "/admin/accounts/user/"},
    )
    assert response["Location"] == VERIFY_URL
    assert client.get("/admin/")["Location"].startswith("/admin/login/")  # not in yet
    done = client.post(VERIFY_URL, {"code": next_code(secret, clock)})
    assert done["Location"] == "/admin/accounts/user/"
    assert client.get("/admin/accounts/user/").status_code == 200


def test_staff_without_a_factor_are_sent_from_the_admin_login_to_set_one_up(db):
    User.objects.create_superuser(username="root", email="root@example.com", password="root-password")
    client = Client()
    response = client.post("/admin/login/", {"username": "root", "password": "root-password", "next": "/admin/"})
    assert response["Location"] == "/accounts/security/"
    assert client.get("/admin/")["Location"].startswith("/admin/login/")


def test_the_admin_login_still_refuses_people_who_are_not_staff(alice):
    response = Client().post("/admin/login/", {"username": "alice", "password": "alice-password"})
    assert response.status_code == 200 and "staff account" in response.content.decode()


# --- Hostile input ----------------------------------------------------------------------------------

JUNK = [
    "",
    "{",
    "[]",
    "null",
    '{"id": 1}',
    json.dumps({"id": "x", "rawId": "x", "type": "public-key", "response": {}}),
    json.dumps(
        {
            "id": "abc",
            "rawId": "abc",
            "type": "public-key",
            "response": {"clientDataJSON": "!!", "authenticatorData": "%%", "signature": "", "userHandle": 5},
        }
    ),
    "[" * 5000 + "]" * 5000,
    "x" * 70_000,
]


@pytest.mark.parametrize("credential", JUNK)
def test_a_junk_passkey_answer_at_sign_in_is_refused_never_a_500(db, credential, settings):
    settings.OAUTH_ISSUER = "http://localhost:8000"
    client = Client()
    client.post("/accounts/passkeys/options/", {"purpose": "signin"})
    response = client.post("/accounts/login/passkey/", {"credential": credential, "next": "/apps/"})
    assert response.status_code == 302 and response["Location"] == "/accounts/login/?next=%2Fapps%2F"
    assert client.session.get(SESSION_KEY) is None


@pytest.mark.parametrize("credential", JUNK)
def test_a_junk_passkey_answer_at_the_second_step_is_refused_never_a_500(alice, clock, credential, settings):
    settings.OAUTH_ISSUER = "http://localhost:8000"
    with_totp(alice)
    client = Client()
    client.post("/accounts/login/", {"username": "alice", "password": "alice-password"})
    client.post("/accounts/passkeys/options/", {"purpose": "verify"})
    response = client.post(VERIFY_URL, {"credential": credential})
    assert response.status_code == 400
    assert client.session.get(SESSION_KEY) is None


@pytest.mark.parametrize("credential", JUNK)
def test_a_junk_passkey_registration_is_refused_never_a_500(alice_client, credential, settings):
    settings.OAUTH_ISSUER = "http://localhost:8000"
    alice_client.post("/accounts/passkeys/options/", {"purpose": "register"})
    response = alice_client.post("/accounts/security/passkeys/add/", {"name": "laptop", "credential": credential})
    assert response.status_code == 400
    assert not Passkey.objects.exists()


def test_passkey_options_are_json_with_a_fresh_challenge_and_no_cache(alice_client, settings):
    settings.OAUTH_ISSUER = "https://keys.example.com"
    first = alice_client.post("/accounts/passkeys/options/", {"purpose": "register"})
    assert first.status_code == 200 and first["Content-Type"] == "application/json"
    assert first["Cache-Control"].startswith("no-store")
    options = json.loads(first.content)
    assert options["rp"] == {"id": "keys.example.com", "name": "Keygrant"}
    assert options["authenticatorSelection"]["residentKey"] == "required"
    second = json.loads(alice_client.post("/accounts/passkeys/options/", {"purpose": "register"}).content)
    assert second["challenge"] != options["challenge"]
    assert options["challenge"] not in str(list(AuditEvent.objects.values_list("detail", flat=True)))


@pytest.mark.parametrize("purpose", ["", "admin", "register\x00", "x" * 1000])
def test_passkey_options_refuse_an_unknown_purpose(alice_client, settings, purpose):
    settings.OAUTH_ISSUER = "https://keys.example.com"
    assert alice_client.post("/accounts/passkeys/options/", {"purpose": purpose}).status_code == 400


def test_passkey_registration_options_need_a_signed_in_person(db, settings):
    settings.OAUTH_ISSUER = "https://keys.example.com"
    assert Client().post("/accounts/passkeys/options/", {"purpose": "register"}).status_code == 403


def test_passkey_options_are_refused_on_an_ip_address_issuer(alice_client):
    assert alice_client.post("/accounts/passkeys/options/", {"purpose": "signin"}).status_code == 400


def test_passkey_options_are_post_only_and_csrf_checked(alice):
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(alice)
    assert strict.get("/accounts/passkeys/options/").status_code == 405
    assert strict.post("/accounts/passkeys/options/", {"purpose": "signin"}).status_code == 403


def test_a_challenge_is_used_once(alice, clock, settings):
    settings.OAUTH_ISSUER = "http://localhost:8000"
    client = Client()
    client.post("/accounts/passkeys/options/", {"purpose": "signin"})
    assert "keygrant_webauthn" in client.session
    client.post("/accounts/login/passkey/", {"credential": "{}"})
    assert "keygrant_webauthn" not in client.session


def test_another_person_s_recovery_code_is_no_use(alice, clock):
    _, alices = with_totp(alice)
    bob = make_user("bob")
    with_totp(bob)
    client = Client()
    client.post("/accounts/login/", {"username": "bob", "password": "bob-password"})
    assert client.post(VERIFY_URL, {"code": alices[0]}).status_code == 400
    assert not RecoveryCode.objects.filter(used_at__isnull=False).exists()


def test_a_challenge_is_short_lived_and_bound_to_its_purpose_and_account(rf, clock):
    from django.contrib.sessions.backends.db import SessionStore

    from accounts import signin

    request = rf.get("/")
    request.session = SessionStore()
    challenge = b"c" * 32

    def store(user_id=1):
        signin.challenge_store(request, purpose="verify", challenge=challenge, user_id=user_id)

    store()
    assert signin.challenge_take(request, purpose="signin", user_id=1) is None  # another purpose...
    assert signin.challenge_take(request, purpose="verify", user_id=1) is None  # ...and it was used up
    store()
    assert signin.challenge_take(request, purpose="verify", user_id=2) is None  # another account
    store()
    clock.advance(signin.CHALLENGE_TTL_SECONDS + 1)
    assert signin.challenge_take(request, purpose="verify", user_id=1) is None  # too old
    store()
    assert signin.challenge_take(request, purpose="verify", user_id=1).challenge == challenge


@pytest.mark.parametrize(
    "stored, answered, accepted", [(5, 6, True), (5, 5, False), (5, 3, False), (0, 0, True), (0, 1, True)]
)
def test_a_passkey_s_sign_count_only_grows(alice, stored, answered, accepted):
    from accounts.factor_services import passkey_use

    passkey = Passkey.objects.create(
        user=alice, name="k", credential_id="c", public_key=b"k", user_handle="h", sign_count=stored
    )
    assert passkey_use(passkey=passkey, new_sign_count=answered) is accepted
    passkey.refresh_from_db()
    assert passkey.sign_count == (answered if accepted else stored)
    assert (passkey.last_used_at is not None) is accepted
