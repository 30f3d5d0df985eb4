"""Signing in with a second factor, through HTTP with a fixed clock: the password first, then a code,
a recovery code or a passkey; the half-signed-in state between them; throttling; the way back to `next`."""

import time

import pytest
from django.contrib.auth import SESSION_KEY
from django.test import Client

from accounts import signin
from accounts.models import AuditEvent, Notification, RecoveryCode, TotpDevice
from accounts.second_factor import TOTP_PERIOD, totp_code_at
from tests.accounts.conftest import LOGIN_URL, sign_in
from tests.accounts.factors import VERIFY_URL, next_code, password_step, with_totp
from tests.conftest import authorize_params, authorize_url


@pytest.fixture
def alice_totp(alice, clock) -> tuple[str, list[str]]:
    return with_totp(alice)


def signed_in_as(client: Client) -> str | None:
    return client.session.get(SESSION_KEY)


def test_the_password_alone_does_not_sign_in_an_account_with_an_authenticator(alice, alice_totp):
    client = Client()
    response = password_step(client, alice)
    assert response["Location"] == VERIFY_URL
    assert signed_in_as(client) is None
    assert client.get("/keys/")["Location"].startswith(LOGIN_URL)  # not signed in
    page = client.get(VERIFY_URL)
    assert page.status_code == 200
    assert "Code from your authenticator app, or a recovery code" in page.content.decode()


def test_the_current_code_finishes_the_sign_in(alice, alice_totp, clock):
    secret, _ = alice_totp
    client = Client()
    password_step(client, alice)
    response = client.post(VERIFY_URL, {"code": next_code(secret, clock)})
    assert response.status_code == 302 and response["Location"] == "/"
    assert signed_in_as(client) == str(alice.pk)
    assert client.session[signin.SECOND_FACTOR] == "totp"
    assert client.get("/keys/").status_code == 200


def test_a_code_typed_with_a_space_is_accepted(alice, alice_totp, clock):
    secret, _ = alice_totp
    client = Client()
    password_step(client, alice)
    code = next_code(secret, clock)
    assert client.post(VERIFY_URL, {"code": f" {code[:3]} {code[3:]} "}).status_code == 302


def test_the_sign_in_in_the_middle_of_an_authorization_request_comes_back_to_the_consent_page(
    alice, alice_totp, clock, pkce_pair
):
    secret, _ = alice_totp
    client = Client()
    url = authorize_url(authorize_params(pkce_pair))
    assert client.get(url)["Location"].startswith(LOGIN_URL + "?next=")
    password_step(client, alice, next=url)
    response = client.post(VERIFY_URL, {"code": next_code(secret, clock)})
    assert response["Location"] == url
    consent = client.get(url)
    assert consent.status_code == 200 and b'name="decision"' in consent.content


def test_next_stays_a_path_on_this_site_through_both_steps(alice, alice_totp, clock):
    secret, _ = alice_totp
    client = Client()
    password_step(client, alice, next="https://evil.example/")
    assert client.post(VERIFY_URL, {"code": next_code(secret, clock)})["Location"] == "/"


@pytest.mark.parametrize("steps_away, accepted", [(-2, False), (-1, True), (0, True), (1, True), (2, False)])
def test_codes_of_one_step_either_side_are_accepted_but_not_further(alice, alice_totp, clock, steps_away, accepted):
    secret, _ = alice_totp
    clock.advance(5 * TOTP_PERIOD)  # far from the step used to set the app up
    client = Client()
    password_step(client, alice)
    code = totp_code_at(secret, time.time() + steps_away * TOTP_PERIOD)
    response = client.post(VERIFY_URL, {"code": code})
    assert (response.status_code == 302) is accepted


def test_a_code_already_used_is_refused_even_within_its_step(alice, alice_totp, clock):
    secret, _ = alice_totp
    code = next_code(secret, clock)
    first = Client()
    password_step(first, alice)
    assert first.post(VERIFY_URL, {"code": code}).status_code == 302
    replay = Client()
    password_step(replay, alice)
    response = replay.post(VERIFY_URL, {"code": code})
    assert response.status_code == 400
    assert "That code was already used" in response.content.decode()
    assert signed_in_as(replay) is None
    failed = AuditEvent.objects.filter(kind=AuditEvent.Kind.SECOND_FACTOR_FAILED).get()
    assert failed.detail["replayed"] is True and failed.subject == alice


def test_the_code_of_the_step_used_to_set_the_app_up_is_spent(alice, clock):
    secret, _ = with_totp(alice)
    client = Client()
    password_step(client, alice)
    assert client.post(VERIFY_URL, {"code": totp_code_at(secret, time.time())}).status_code == 400


def test_a_wrong_code_is_refused_readably_and_audited_without_the_code(alice, alice_totp):
    client = Client()
    password_step(client, alice)
    response = client.post(VERIFY_URL, {"code": "000000"})
    assert response.status_code == 400
    assert "That code is not right." in response.content.decode()
    event = AuditEvent.objects.get(kind=AuditEvent.Kind.SECOND_FACTOR_FAILED)
    assert event.detail["method"] == "totp" and event.detail["purpose"] == "signin"
    assert "000000" not in str(event.detail)


@pytest.mark.parametrize("junk", ["", "12345", "1234567", "١٢٣٤٥٦", "abc", "x" * 70, "\x00" * 6])
def test_malformed_codes_get_a_readable_error_never_a_500(alice, alice_totp, junk):
    client = Client()
    password_step(client, alice)
    response = client.post(VERIFY_URL, {"code": junk})
    assert response.status_code == 400
    assert 'class="form-error"' in response.content.decode() or 'class="field-error"' in response.content.decode()


def test_wrong_codes_are_throttled_per_account_like_passwords(alice, alice_totp, clock, settings):
    secret, _ = alice_totp
    client = Client()
    password_step(client, alice)
    for _ in range(settings.LOGIN_THROTTLE_USERNAME_SLOWDOWN_AFTER - 1):
        assert client.post(VERIFY_URL, {"code": "000000"}).status_code == 400
    third = client.post(VERIFY_URL, {"code": "000000"})
    assert third.status_code == 429 and third["Retry-After"] == str(settings.LOGIN_THROTTLE_DELAY_SECONDS)
    # Even the right code waits (it is not checked), and from another browser and address too.
    other = Client()
    password_step(other, alice, ip="203.0.113.9")
    refused = other.post(VERIFY_URL, {"code": totp_code_at(secret, time.time())}, REMOTE_ADDR="203.0.113.9")
    assert refused.status_code == 429
    assert "Too many failed attempts" in refused.content.decode()
    assert AuditEvent.objects.filter(kind=AuditEvent.Kind.SECOND_FACTOR_THROTTLED, subject=alice).count() == 1
    clock.advance(settings.LOGIN_THROTTLE_DELAY_SECONDS + TOTP_PERIOD)
    response = other.post(VERIFY_URL, {"code": totp_code_at(secret, time.time())}, REMOTE_ADDR="203.0.113.9")
    assert response.status_code == 302


def test_wrong_codes_lock_the_account_s_second_step_at_the_lockout(alice, alice_totp, clock, settings):
    settings.LOGIN_THROTTLE_USERNAME_SLOWDOWN_AFTER = 100
    settings.LOGIN_THROTTLE_ADDRESS_SLOWDOWN_AFTER = 100
    settings.LOGIN_THROTTLE_USERNAME_LOCKOUT_AFTER = 5
    client = Client()
    password_step(client, alice)
    for _ in range(4):
        assert client.post(VERIFY_URL, {"code": "000000"}).status_code == 400
    assert client.post(VERIFY_URL, {"code": "000000"}).status_code == 429
    assert client.post(VERIFY_URL, {"code": "000000"})["Retry-After"]


def test_wrong_codes_from_one_address_are_throttled_across_accounts(alice, bob, clock, settings):
    settings.LOGIN_THROTTLE_ADDRESS_SLOWDOWN_AFTER = 2
    for user in (alice, bob):
        with_totp(user)
    for user in (alice, bob):
        client = Client()
        password_step(client, user, ip="198.51.100.4")
        status = client.post(VERIFY_URL, {"code": "000000"}, REMOTE_ADDR="198.51.100.4").status_code
    assert status == 429


def test_the_half_signed_in_state_expires(alice, alice_totp, clock, settings):
    secret, _ = alice_totp
    client = Client()
    password_step(client, alice, next="/apps/")
    clock.advance(settings.TWO_FACTOR_SIGNIN_TTL_SECONDS + 1)
    response = client.post(VERIFY_URL, {"code": totp_code_at(secret, time.time())})
    assert response.status_code == 302 and response["Location"] == LOGIN_URL + "?next=%2Fapps%2F"
    assert signed_in_as(client) is None


def test_the_half_signed_in_state_is_bound_to_the_account_and_its_password(alice, alice_totp, clock):
    secret, _ = alice_totp
    client = Client()
    password_step(client, alice)
    alice.set_password("changed meanwhile")
    alice.save()
    response = client.post(VERIFY_URL, {"code": next_code(secret, clock)})
    assert response["Location"].startswith(LOGIN_URL)
    assert signed_in_as(client) is None


def test_the_second_step_cannot_be_reached_without_the_password(alice, alice_totp, clock):
    secret, _ = alice_totp
    client = Client()
    response = client.post(VERIFY_URL, {"code": next_code(secret, clock)})
    assert response["Location"].startswith(LOGIN_URL)
    assert signed_in_as(client) is None


def test_the_session_id_changes_after_the_password_and_again_after_the_second_step(alice, alice_totp, clock):
    secret, _ = alice_totp
    client = Client()
    client.get(LOGIN_URL)
    client.session.save()
    first = client.session.session_key
    password_step(client, alice)
    second = client.session.session_key
    client.post(VERIFY_URL, {"code": next_code(secret, clock)})
    assert len({first, second, client.session.session_key}) == 3


def test_a_recovery_code_signs_in_once_and_is_mailed(alice, alice_totp):
    _, codes = alice_totp
    client = Client()
    password_step(client, alice)
    assert client.post(VERIFY_URL, {"code": codes[0].upper()}).status_code == 302
    assert RecoveryCode.objects.filter(user=alice, used_at__isnull=False).count() == 1
    event = AuditEvent.objects.get(kind=AuditEvent.Kind.RECOVERY_CODE_USED)
    assert event.detail == {"purpose": "signin", "left": 9}
    notice = Notification.objects.get(kind=Notification.Kind.RECOVERY_CODE_USED)
    assert notice.to_address == "alice@example.com" and "recovery code" in notice.subject
    assert "9 unused recovery codes left" in notice.body
    assert codes[0] not in notice.body and codes[0].replace("-", "") not in notice.body
    again = Client()
    password_step(again, alice)
    response = again.post(VERIFY_URL, {"code": codes[0]})
    assert response.status_code == 400 and "That code is not right." in response.content.decode()


def test_recovery_codes_are_stored_as_hashes_only(alice, alice_totp):
    _, codes = alice_totp
    assert len(codes) == 10 and len(set(codes)) == 10
    stored = list(RecoveryCode.objects.filter(user=alice).values_list("code_hash", flat=True))
    for code in codes:
        assert code not in stored and code.replace("-", "") not in stored
        assert all(len(value) == 64 for value in stored)


def test_the_authenticator_secret_is_encrypted_at_rest(alice, alice_totp):
    secret, _ = alice_totp
    stored = TotpDevice.objects.get(user=alice).secret_encrypted
    assert secret not in stored
    assert TotpDevice.objects.get(user=alice).secret() == secret


def test_an_account_without_a_second_factor_signs_in_with_its_password_as_before(alice):
    client = Client()
    response = sign_in(client, "alice", "alice-password")
    assert response["Location"] == "/"
    assert signed_in_as(client) == str(alice.pk)


def test_a_wrong_password_never_reaches_the_second_step(alice, alice_totp):
    client = Client()
    assert sign_in(client, "alice", "wrong").status_code == 200
    assert client.get(VERIFY_URL)["Location"].startswith(LOGIN_URL)


def test_a_right_code_forgets_the_account_s_failures(alice, alice_totp, clock, settings):
    secret, _ = alice_totp
    client = Client()
    password_step(client, alice)
    for _ in range(settings.LOGIN_THROTTLE_USERNAME_SLOWDOWN_AFTER - 1):
        client.post(VERIFY_URL, {"code": "000000"})
    assert client.post(VERIFY_URL, {"code": next_code(secret, clock)}).status_code == 302
    other = Client()
    password_step(other, alice)
    assert other.post(VERIFY_URL, {"code": "000000"}).status_code == 400  # counting starts again


def test_no_notice_or_event_holds_a_secret(alice, alice_totp, clock):
    secret, codes = alice_totp
    client = Client()
    password_step(client, alice)
    client.post(VERIFY_URL, {"code": codes[1]})
    text = " ".join(str(e.detail) for e in AuditEvent.objects.all())
    text += " ".join(n.subject + n.body for n in Notification.objects.all())
    assert secret not in text
    for code in codes:
        assert code not in text and code.replace("-", "") not in text


def test_the_browser_is_remembered_only_once_the_sign_in_is_complete(alice, alice_totp, clock):
    from accounts.throttle import KNOWN_BROWSER_COOKIE

    secret, _ = alice_totp
    client = Client()
    assert KNOWN_BROWSER_COOKIE not in password_step(client, alice).cookies
    assert KNOWN_BROWSER_COOKIE in client.post(VERIFY_URL, {"code": next_code(secret, clock)}).cookies
