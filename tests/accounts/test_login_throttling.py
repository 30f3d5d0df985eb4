"""Failed sign-ins slow the guesser down, never the account's owner.

Counted per username from one address, per address, and per username from
all addresses together (a much higher cap); a browser the owner signed in
from before is never locked out by anyone else's failures. Each test runs
with both counter stores (the cache, and the database table production
uses without CACHE_URL).
"""

import threading

import pytest
from django.contrib.auth import forms as auth_forms
from django.test import Client, RequestFactory

from accounts import throttle
from accounts.forms import ThrottledAuthenticationForm
from accounts.models import AuditEvent
from tests.accounts.conftest import sign_in

pytestmark = pytest.mark.usefixtures("counter_store")

OWNER_IP = "198.51.100.10"


@pytest.fixture(autouse=True)
def _thresholds(settings):
    settings.LOGIN_THROTTLE_WINDOW_SECONDS = 900
    settings.LOGIN_THROTTLE_USERNAME_SLOWDOWN_AFTER = 3
    settings.LOGIN_THROTTLE_USERNAME_LOCKOUT_AFTER = 5
    settings.LOGIN_THROTTLE_USERNAME_CAP = 12
    settings.LOGIN_THROTTLE_ADDRESS_SLOWDOWN_AFTER = 6
    settings.LOGIN_THROTTLE_ADDRESS_LOCKOUT_AFTER = 8
    settings.LOGIN_THROTTLE_DELAY_SECONDS = 5
    settings.LOGIN_THROTTLE_LOCKOUT_SECONDS = 300


def fail(username: str, *, ip: str, client: Client | None = None):
    return sign_in(client or Client(), username, "wrong-password", ip=ip)


def signed_in(response) -> bool:
    return response.status_code == 302


def test_the_first_failures_are_not_slowed(alice, clock):
    for _ in range(2):
        response = fail("alice", ip="10.0.0.1")
        assert response.status_code == 200
        assert "Too many" not in response.content.decode()
    assert signed_in(sign_in(Client(), "alice", "alice-password", ip="10.0.0.1"))


def test_failures_for_one_username_from_one_address_slow_down_then_lock_that_address(alice, clock):
    for _ in range(2):
        fail("alice", ip="10.0.0.1")
    third = fail("alice", ip="10.0.0.1")
    assert third.status_code == 429
    assert "Too many failed attempts. Try again in 5 seconds." in third.content.decode()
    assert third["Retry-After"] == "5"

    # While waiting even the right password is refused from that address.
    waiting = sign_in(Client(), "alice", "alice-password", ip="10.0.0.1")
    assert waiting.status_code == 429
    assert "Too many failed attempts. Try again in 5 seconds." in waiting.content.decode()

    clock.advance(5)
    fourth = fail("alice", ip="10.0.0.1")
    assert "Try again in 10 seconds." in fourth.content.decode()  # the delay doubles
    clock.advance(10)
    fifth = fail("alice", ip="10.0.0.1")
    assert "Too many failed attempts. Try again in 5 minutes." in fifth.content.decode()  # locked out

    clock.advance(299)
    assert sign_in(Client(), "alice", "alice-password", ip="10.0.0.1").status_code == 429
    clock.advance(1)
    assert signed_in(sign_in(Client(), "alice", "alice-password", ip="10.0.0.1"))


def test_failures_from_other_addresses_do_not_lock_the_owner_out(alice, clock):
    """Issue #13 item 4: three wrong passwords used to refuse the owner's right one from anywhere."""
    for attacker in ("203.0.113.1", "203.0.113.2"):
        for _ in range(5):
            fail("alice", ip=attacker)
    assert fail("alice", ip="203.0.113.1").status_code == 429  # the guesser is locked...
    assert signed_in(sign_in(Client(), "alice", "alice-password", ip=OWNER_IP))  # ...the owner is not


def test_guessing_spread_over_many_addresses_meets_the_username_cap(alice, clock):
    for n in range(12):
        fail("alice", ip=f"203.0.113.{n}")
    refused = sign_in(Client(), "alice", "alice-password", ip=OWNER_IP)
    assert refused.status_code == 429
    assert "Try again in 5 minutes" in refused.content.decode()
    clock.advance(300)
    assert signed_in(sign_in(Client(), "alice", "alice-password", ip=OWNER_IP))


def test_a_browser_the_owner_signed_in_from_is_never_locked_out_by_others(alice, clock):
    browser = Client()
    assert signed_in(sign_in(browser, "alice", "alice-password", ip=OWNER_IP))
    assert throttle.KNOWN_BROWSER_COOKIE in browser.cookies
    browser.post("/accounts/logout/")

    for n in range(12):  # the username's cap...
        fail("alice", ip=f"203.0.113.{n}")
    for n in range(8):  # ...and the owner's (shared) address are both locked by someone else
        fail(f"nobody{n}", ip=OWNER_IP)
    assert sign_in(Client(), "alice", "alice-password", ip=OWNER_IP).status_code == 429  # another browser

    assert signed_in(sign_in(browser, "alice", "alice-password", ip=OWNER_IP))


def test_a_known_browser_is_still_slowed_down_for_its_own_failures(alice, clock):
    browser = Client()
    sign_in(browser, "alice", "alice-password", ip=OWNER_IP)
    browser.post("/accounts/logout/")
    for _ in range(2):
        fail("alice", ip=OWNER_IP, client=browser)
    assert fail("alice", ip=OWNER_IP, client=browser).status_code == 429


def test_the_known_browser_cookie_only_speaks_for_its_own_username(alice, mallory, clock):
    mallorys = Client()
    assert signed_in(sign_in(mallorys, "mallory", "mallory-password", ip="203.0.113.50"))
    mallorys.post("/accounts/logout/")
    for n in range(12):
        fail("alice", ip=f"203.0.113.{n}", client=mallorys)
    assert sign_in(Client(), "alice", "alice-password", ip=OWNER_IP).status_code == 429  # the cap was reached


def test_a_forged_known_browser_cookie_is_ignored(alice, clock):
    for n in range(12):
        fail("alice", ip=f"203.0.113.{n}")
    browser = Client()
    browser.cookies[throttle.KNOWN_BROWSER_COOKIE] = "eyJ1IjoiYWxpY2UiLCJiIjoieCJ9:forged:signature"
    assert sign_in(browser, "alice", "alice-password", ip=OWNER_IP).status_code == 429


def test_the_username_counter_ignores_case(alice, clock):
    fail("alice", ip="10.0.0.1")
    fail("ALICE", ip="10.0.0.1")
    assert fail("Alice", ip="10.0.0.1").status_code == 429


def test_throttled_attempts_are_refused_before_the_password_is_checked(alice, clock):
    for _ in range(3):
        fail("alice", ip="10.0.0.1")
    failed_before = AuditEvent.objects.filter(kind=AuditEvent.Kind.LOGIN_FAILED).count()
    for _ in range(5):
        assert fail("alice", ip="10.0.0.1").status_code == 429
    # Refused attempts do not count as failures (they never reached the password check)...
    assert AuditEvent.objects.filter(kind=AuditEvent.Kind.LOGIN_FAILED).count() == failed_before
    # ...and the refusal is recorded once per waiting period, not once per request.
    assert AuditEvent.objects.filter(kind=AuditEvent.Kind.LOGIN_THROTTLED, subject=alice).count() == 1
    # Nor do they bring the lockout closer: after the wait, the next failure is the 4th.
    clock.advance(5)
    assert "Try again in 10 seconds" in fail("alice", ip="10.0.0.1").content.decode()


def test_parallel_guesses_get_no_more_password_checks_than_patient_ones(alice, clock, monkeypatch):
    """Issue #13 item 5: each attempt is counted before its password is checked.

    Twenty guesses for one username from one address are all in flight at
    once: each arrives while the previous one's password is being checked.
    Only those within the free attempts, and one more, may reach a check.
    """
    factory = RequestFactory()
    checks = []
    arrived = []
    real_authenticate = auth_forms.authenticate

    def guess() -> None:
        arrived.append(1)
        request = factory.post("/accounts/login/", REMOTE_ADDR="10.0.0.1")
        ThrottledAuthenticationForm(request, data={"username": "alice", "password": "wrong"}).is_valid()

    def slow_authenticate(request, **credentials):
        checks.append(credentials["username"])
        while len(arrived) < 20:  # the next guess arrives before this check has finished
            guess()
        return real_authenticate(request, **credentials)

    monkeypatch.setattr(auth_forms, "authenticate", slow_authenticate)
    guess()
    assert len(checks) <= 3 + 1, len(checks)


def test_concurrent_guesses_from_real_threads_are_counted_before_checking(shared_database, settings, monkeypatch):
    """The same with threads released together: the store's counting is atomic."""
    from tests.conftest import make_user

    make_user("alice")
    settings.LOGIN_THROTTLE_USERNAME_SLOWDOWN_AFTER = 3
    factory = RequestFactory()
    checks = []
    lock = threading.Lock()
    real_authenticate = auth_forms.authenticate

    def counting_authenticate(request, **credentials):
        with lock:
            checks.append(1)
        return real_authenticate(request, **credentials)

    monkeypatch.setattr(auth_forms, "authenticate", counting_authenticate)
    barrier = threading.Barrier(8)
    errors = []

    def worker() -> None:
        from django.db import connections

        try:
            barrier.wait(timeout=30)
            request = factory.post("/accounts/login/", REMOTE_ADDR="10.0.0.1")
            ThrottledAuthenticationForm(request, data={"username": "alice", "password": "wrong"}).is_valid()
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connections.close_all()

    pool = [threading.Thread(target=worker) for _ in range(8)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join(timeout=60)
    assert errors == []
    assert len(checks) <= 3 + 1, len(checks)


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


def test_an_ipv6_network_counts_as_one_address(alice, bob, clock):
    """Issue #13 item 6: one /64 is one subscriber, not 2^64 fresh counters."""
    for n in range(6):
        fail(f"nobody{n}", ip=f"2001:db8:1:2::{n + 1:x}")
    assert sign_in(Client(), "alice", "alice-password", ip="2001:db8:1:2:ffff::1").status_code == 429
    assert signed_in(sign_in(Client(), "bob", "bob-password", ip="2001:db8:1:3::1"))  # the next /64


def test_requests_without_a_usable_address_do_not_share_one_bucket(alice, clock):
    """Issue #13 item 6: behind a unix socket REMOTE_ADDR is empty; one client must not lock all the others."""
    for n in range(10):
        fail(f"nobody{n}", ip="")
    assert signed_in(sign_in(Client(), "alice", "alice-password", ip=""))


def test_forwarded_addresses_with_ports_are_the_same_client(settings, alice, bob, clock):
    settings.TRUSTED_PROXY_COUNT = 1
    for n in range(6):
        Client().post(
            "/accounts/login/",
            {"username": f"nobody{n}", "password": "x"},
            REMOTE_ADDR="10.9.9.9",
            HTTP_X_FORWARDED_FOR=f"203.0.113.7:{40000 + n}",
        )
    same = Client().post(
        "/accounts/login/",
        {"username": "alice", "password": "alice-password"},
        REMOTE_ADDR="10.9.9.9",
        HTTP_X_FORWARDED_FOR="203.0.113.7:41000",
    )
    assert same.status_code == 429
    other = Client().post(
        "/accounts/login/",
        {"username": "bob", "password": "bob-password"},
        REMOTE_ADDR="10.9.9.9",
        HTTP_X_FORWARDED_FOR="198.51.100.1:41000",
    )
    assert signed_in(other)


def test_a_successful_sign_in_resets_the_username_counter(alice, clock):
    for _ in range(2):
        fail("alice", ip="10.0.0.1")
    assert signed_in(sign_in(Client(), "alice", "alice-password", ip="10.0.0.1"))
    # Without the reset, the next failure would be the third and be slowed down.
    for _ in range(2):
        response = fail("alice", ip="10.0.0.1")
        assert response.status_code == 200
        assert "Too many" not in response.content.decode()


def test_a_successful_sign_in_does_not_reset_the_address_counter(alice, clock):
    for n in range(5):
        fail(f"nobody{n}", ip="203.0.113.7")
    assert signed_in(sign_in(Client(), "alice", "alice-password", ip="203.0.113.7"))
    assert fail("nobody5", ip="203.0.113.7").status_code == 429


def test_failures_are_forgotten_after_the_window(alice, clock):
    for _ in range(2):
        fail("alice", ip="10.0.0.1")
    clock.advance(901)
    response = fail("alice", ip="10.0.0.1")
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
    for _ in range(2):
        fail("alice", ip="10.0.0.5")  # two failures on the site's login page...
    response = Client().post("/admin/login/", {"username": "alice", "password": "wrong"}, REMOTE_ADDR="10.0.0.5")
    assert "Too many failed attempts. Try again in 5 seconds." in response.content.decode()  # ...the third here
    assert sign_in(Client(), "alice", "alice-password", ip="10.0.0.5").status_code == 429
