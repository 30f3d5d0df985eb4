"""Repeated failed sign-ins are slowed down, then refused for a while, per username and per address."""

import pytest
from django.test import Client

from accounts import throttle
from accounts.models import AuditEvent
from tests.accounts.conftest import sign_in


@pytest.fixture(autouse=True)
def _thresholds(settings):
    settings.LOGIN_THROTTLE_WINDOW_SECONDS = 900
    settings.LOGIN_THROTTLE_USERNAME_SLOWDOWN_AFTER = 3
    settings.LOGIN_THROTTLE_USERNAME_LOCKOUT_AFTER = 5
    settings.LOGIN_THROTTLE_ADDRESS_SLOWDOWN_AFTER = 6
    settings.LOGIN_THROTTLE_ADDRESS_LOCKOUT_AFTER = 8
    settings.LOGIN_THROTTLE_DELAY_SECONDS = 5
    settings.LOGIN_THROTTLE_LOCKOUT_SECONDS = 300


def fail(username: str, *, ip: str):
    return sign_in(Client(), username, "wrong-password", ip=ip)


def signed_in(response) -> bool:
    return response.status_code == 302


def test_the_first_failures_are_not_slowed(alice, clock):
    for n in range(2):
        response = fail("alice", ip=f"10.0.0.{n}")
        assert response.status_code == 200
        assert "Too many" not in response.content.decode()
    assert signed_in(sign_in(Client(), "alice", "alice-password", ip="10.0.0.9"))


def test_failures_for_one_username_from_many_addresses_slow_down_then_lock_it(alice, clock):
    for n in range(2):
        fail("alice", ip=f"10.0.0.{n}")
    third = fail("alice", ip="10.0.0.3")
    assert third.status_code == 429
    assert "Too many failed attempts. Try again in 5 seconds." in third.content.decode()
    assert third["Retry-After"] == "5"

    # While waiting even the right password is refused, from any address.
    waiting = sign_in(Client(), "alice", "alice-password", ip="10.0.0.4")
    assert waiting.status_code == 429
    assert "Too many failed attempts. Try again in 5 seconds." in waiting.content.decode()

    clock.advance(5)
    fourth = fail("alice", ip="10.0.0.5")
    assert "Try again in 10 seconds." in fourth.content.decode()  # the delay doubles
    clock.advance(10)
    fifth = fail("alice", ip="10.0.0.6")
    assert "Too many failed attempts. Try again in 5 minutes." in fifth.content.decode()  # locked out

    clock.advance(299)
    assert sign_in(Client(), "alice", "alice-password", ip="10.0.0.7").status_code == 429
    clock.advance(1)
    assert signed_in(sign_in(Client(), "alice", "alice-password", ip="10.0.0.7"))


def test_the_username_counter_ignores_case(alice, clock):
    fail("alice", ip="10.0.0.1")
    fail("ALICE", ip="10.0.0.2")
    assert fail("Alice", ip="10.0.0.3").status_code == 429


def test_throttled_attempts_are_refused_before_the_password_is_checked(alice, clock):
    for n in range(3):
        fail("alice", ip=f"10.0.0.{n}")
    failed_before = AuditEvent.objects.filter(kind=AuditEvent.Kind.LOGIN_FAILED).count()
    for _ in range(5):
        assert fail("alice", ip="10.0.0.8").status_code == 429
    # Refused attempts do not count as failures (they never reached the password check)...
    assert AuditEvent.objects.filter(kind=AuditEvent.Kind.LOGIN_FAILED).count() == failed_before
    # ...and the refusal is recorded once per waiting period, not once per request.
    assert AuditEvent.objects.filter(kind=AuditEvent.Kind.LOGIN_THROTTLED, subject=alice).count() == 1


def test_failures_from_one_address_across_usernames_lock_that_address(alice, bob, clock):
    for n in range(5):
        fail(f"nobody{n}", ip="203.0.113.7")  # one try per username: no username is throttled
    assert fail("nobody5", ip="203.0.113.7").status_code == 429  # 6th failure: slowed down
    blocked = sign_in(Client(), "alice", "alice-password", ip="203.0.113.7")
    assert blocked.status_code == 429
    assert "Try again in 5 seconds" in blocked.content.decode()

    # Other addresses are unaffected.
    assert signed_in(sign_in(Client(), "bob", "bob-password", ip="198.51.100.1"))

    clock.advance(5)
    fail("nobody6", ip="203.0.113.7")
    clock.advance(10)
    locked = fail("nobody7", ip="203.0.113.7")
    assert "Try again in 5 minutes" in locked.content.decode()


def test_a_successful_sign_in_resets_the_username_counter(alice, clock):
    for n in range(2):
        fail("alice", ip=f"10.0.0.{n}")
    assert signed_in(sign_in(Client(), "alice", "alice-password", ip="10.0.0.2"))
    # Without the reset, the next failure would be the third and be slowed down.
    for n in range(2):
        response = fail("alice", ip=f"10.0.1.{n}")
        assert response.status_code == 200
        assert "Too many" not in response.content.decode()


def test_a_successful_sign_in_does_not_reset_the_address_counter(alice, clock):
    for n in range(5):
        fail(f"nobody{n}", ip="203.0.113.7")
    assert signed_in(sign_in(Client(), "alice", "alice-password", ip="203.0.113.7"))
    assert fail("nobody5", ip="203.0.113.7").status_code == 429


def test_failures_are_forgotten_after_the_window(alice, clock):
    for n in range(2):
        fail("alice", ip=f"10.0.0.{n}")
    clock.advance(901)
    response = fail("alice", ip="10.0.0.3")
    assert response.status_code == 200


def test_the_address_behind_trusted_proxies_is_the_one_counted(settings, alice, clock):
    settings.TRUSTED_PROXY_COUNT = 1
    for n in range(6):
        Client().post(
            "/accounts/login/",
            {"username": f"nobody{n}", "password": "x"},
            REMOTE_ADDR="10.9.9.9",
            HTTP_X_FORWARDED_FOR="203.0.113.7",
        )
    # The proxy's own address is not locked: another client behind it signs in.
    response = Client().post(
        "/accounts/login/",
        {"username": "alice", "password": "alice-password"},
        REMOTE_ADDR="10.9.9.9",
        HTTP_X_FORWARDED_FOR="198.51.100.1",
    )
    assert signed_in(response)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(1, "in 1 second"), (45, "in 45 seconds"), (60, "in 1 minute"), (61, "in 2 minutes"), (240, "in 4 minutes")],
)
def test_the_wait_is_described_in_words(seconds, text):
    assert throttle.describe_wait(seconds) == text


def test_the_delay_doubles_and_is_capped_by_the_lockout(settings):
    settings.LOGIN_THROTTLE_DELAY_SECONDS = 5
    settings.LOGIN_THROTTLE_LOCKOUT_SECONDS = 900
    delays = [throttle.delay_after(n, slowdown_after=3, lockout_after=10) for n in range(1, 12)]
    assert delays == [0, 0, 5, 10, 20, 40, 80, 160, 320, 900, 900]
    assert throttle.delay_after(40, slowdown_after=3, lockout_after=100) == 900


def test_the_admin_login_form_shares_the_limits(alice, clock):
    from django.contrib import admin

    from accounts.forms import ThrottledAdminAuthenticationForm

    assert admin.site.login_form is ThrottledAdminAuthenticationForm  # wired in accounts/admin.py
    for n in range(2):
        fail("alice", ip=f"10.0.0.{n}")  # two failures on the site's login page...
    response = Client().post("/admin/login/", {"username": "alice", "password": "wrong"}, REMOTE_ADDR="10.0.0.5")
    assert "Too many failed attempts. Try again in 5 seconds." in response.content.decode()  # ...the third here
    assert sign_in(Client(), "alice", "alice-password", ip="10.0.0.6").status_code == 429
