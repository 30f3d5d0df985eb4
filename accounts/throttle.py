"""Login throttling and password-reset limits, built on accounts.counters.

Sign-in attempts are counted *before* the password is checked, atomically
(item 5 of issue #13): each attempt adds one to its counters first, and
past the free attempts only one attempt at a time may go on to the
password check, so a burst of parallel guesses gets no more checks than a
patient guesser. An attempt that turns out right is taken back.

Who is slowed down is the attacker, not the owner (issue #13 item 4):

- one username from one client address (the "pair"): slowed down after
  LOGIN_THROTTLE_USERNAME_SLOWDOWN_AFTER failures, locked after
  LOGIN_THROTTLE_USERNAME_LOCKOUT_AFTER; other addresses are not affected;
- one client address, any usernames (password spraying):
  LOGIN_THROTTLE_ADDRESS_SLOWDOWN_AFTER / _LOCKOUT_AFTER;
- one username from all addresses together: a much higher cap,
  LOGIN_THROTTLE_USERNAME_CAP, against guessing spread over many addresses;
- a browser the person signed in from before carries a signed "known
  browser" cookie bound to their username. Its attempts for that username
  are counted on that browser alone (pair thresholds), so neither the
  username's cap nor a busy shared address can lock the owner out there.

Nothing here sleeps: "slowing down" means an attempt made before the wait is
over is refused, before the password is checked (it reveals nothing and
costs no password hash), and is not counted.
"""

import hashlib
import math
import secrets
import time
from dataclasses import dataclass, field

from django.conf import settings
from django.core import signing
from django.http import HttpResponse

from accounts.counters import address_bucket, store

_PREFIX = "accounts:login-throttle"


def _digest(text: str) -> str:
    # Case-folded, so "Alice" and "alice" share one counter; hashed, so the
    # store never holds what someone typed (it may be a mistyped password).
    return hashlib.sha256(text.strip().casefold().encode("utf-8", "surrogatepass")).hexdigest()[:32]


def _ms(moment: float) -> int:
    return int(moment * 1000)


@dataclass(frozen=True)
class _Scope:
    name: str  # "pair", "address", "username" or "browser"
    ident: str  # hashes and address buckets only: never what was typed
    slowdown_after: int
    lockout_after: int

    def key(self, what: str) -> str:
        return f"{_PREFIX}:{self.name}:{self.ident}:{what}"

    @property
    def count_key(self) -> str:
        return self.key("failures")

    @property
    def wait_key(self) -> str:
        """Until when (milliseconds) attempts are refused."""
        return self.key("retry-at")

    @property
    def logged_key(self) -> str:
        return self.key("logged")

    @property
    def belongs_to_username(self) -> bool:
        """Forgotten when the person signs in or resets their password."""
        return not self.name.endswith("address")


def _scopes(*, username: str, ip: str | None, browser: str | None = None) -> list[_Scope]:
    name = _digest(username)
    pair_limits = settings.LOGIN_THROTTLE_USERNAME_SLOWDOWN_AFTER, settings.LOGIN_THROTTLE_USERNAME_LOCKOUT_AFTER
    if browser is not None:
        return [_Scope("browser", _digest(browser), *pair_limits)]
    cap = settings.LOGIN_THROTTLE_USERNAME_CAP
    scopes = [_Scope("username", name, cap, cap)]
    bucket = address_bucket(ip)
    if bucket is not None:
        scopes += [
            _Scope("pair", _digest(f"{name}|{bucket}"), *pair_limits),
            _Scope(
                "address",
                bucket,
                settings.LOGIN_THROTTLE_ADDRESS_SLOWDOWN_AFTER,
                settings.LOGIN_THROTTLE_ADDRESS_LOCKOUT_AFTER,
            ),
        ]
    return scopes


def delay_after(failures: int, *, slowdown_after: int, lockout_after: int) -> int:
    """Seconds the next attempt must wait after `failures` failures in the window."""
    if failures >= lockout_after:
        return settings.LOGIN_THROTTLE_LOCKOUT_SECONDS
    if failures >= slowdown_after:
        doubling = min(failures - slowdown_after, 20)
        return min(settings.LOGIN_THROTTLE_DELAY_SECONDS * 2**doubling, settings.LOGIN_THROTTLE_LOCKOUT_SECONDS)
    return 0


def _delay(scope: _Scope, failures: int) -> int:
    return delay_after(failures, slowdown_after=scope.slowdown_after, lockout_after=scope.lockout_after)


def _wait_of(scopes: list[_Scope]) -> tuple[int, list[_Scope]]:
    """Seconds until all `scopes` allow an attempt, and the scopes still waiting."""
    stored = store().get_many([s.wait_key for s in scopes])
    now = time.time()
    waiting = [(s, math.ceil(stored[s.wait_key] / 1000 - now)) for s in scopes if s.wait_key in stored]
    waiting = [(s, wait) for s, wait in waiting if wait > 0]
    return max([0, *(wait for _, wait in waiting)]), [s for s, _ in waiting]


@dataclass
class Attempt:
    """One sign-in attempt, counted before its password is checked."""

    username: str
    scopes: list[_Scope]
    counts: dict[_Scope, int] = field(default_factory=dict)
    claimed: list[_Scope] = field(default_factory=list)  # scopes whose one-at-a-time slot this attempt holds
    refused_for: int = 0  # seconds to wait, when refused before the password check

    def _undo(self) -> None:
        counters = store()
        for scope in self.counts:
            counters.unhit(scope.count_key)
        if self.claimed:
            counters.delete(*(s.wait_key for s in self.claimed))

    def failed(self) -> int:
        """The password was wrong: the waits this failure sets; returns the longest (0: none)."""
        counters, now, longest = store(), time.time(), 0
        for scope, failures in self.counts.items():
            wait = _delay(scope, failures)
            if wait:
                counters.put(scope.wait_key, value=_ms(now + wait), ttl=wait)
                longest = max(longest, wait)
            elif scope in self.claimed:
                counters.delete(scope.wait_key)
        return longest

    def succeeded(self) -> None:
        """The password was right: the attempt is taken back, and the username's failures forgotten.

        The address keeps its other failures, so that one valid account cannot
        be used to clear an address that is guessing other people's passwords.
        """
        counters = store()
        address_scopes = [s for s in self.counts if not s.belongs_to_username]
        for scope in address_scopes:
            counters.unhit(scope.count_key)
        released = [s.wait_key for s in self.claimed if not s.belongs_to_username]
        forgotten = [key for s in self.scopes if s.belongs_to_username for key in _keys_of(s)]
        counters.delete(*released, *forgotten)


def _keys_of(scope: _Scope) -> list[str]:
    return [scope.count_key, scope.wait_key, scope.logged_key]


def attempt_begin(*, username: str, ip: str | None, browser: str | None = None) -> Attempt:
    """Count a sign-in attempt before its password is checked; `refused_for` > 0 when it must not go on.

    Below a scope's slow-down threshold attempts go on freely; past it each
    attempt must take the scope's one slot (an atomic claim of its wait
    key), so parallel attempts cannot all reach the password check.
    """
    return _begin(username=username, scopes=_scopes(username=username, ip=ip, browser=browser))


def _begin(*, username: str, scopes: list[_Scope]) -> Attempt:
    attempt = Attempt(username=username, scopes=scopes)
    wait, _ = _wait_of(scopes)
    if wait:
        attempt.refused_for = wait
        return attempt
    counters, now = store(), time.time()
    for scope in scopes:
        failures = counters.hit(scope.count_key, window=settings.LOGIN_THROTTLE_WINDOW_SECONDS)
        attempt.counts[scope] = failures
        if failures > scope.slowdown_after:
            hold = max(1, _delay(scope, failures))
            if not counters.claim(scope.wait_key, value=_ms(now + hold), ttl=hold):
                attempt._undo()
                attempt.refused_for = max(1, _wait_of([scope])[0])
                return attempt
            attempt.claimed.append(scope)
    return attempt


def factor_attempt_begin(*, user_id: int, username: str, ip: str | None) -> Attempt:
    """Count a second-factor attempt (an authenticator or recovery code) before it is checked.

    The same rules and thresholds as passwords, on counters of their own:
    per account (whoever tries: they already know its password) with the
    per-username-and-address thresholds, and per client address with the
    address thresholds. A right code takes the attempt back and forgets the
    account's failures; a passkey is not guessable and is not counted.
    """
    scopes = [
        _Scope(
            "factor-account",
            str(user_id),
            settings.LOGIN_THROTTLE_USERNAME_SLOWDOWN_AFTER,
            settings.LOGIN_THROTTLE_USERNAME_LOCKOUT_AFTER,
        )
    ]
    bucket = address_bucket(ip)
    if bucket is not None:
        scopes.append(
            _Scope(
                "factor-address",
                bucket,
                settings.LOGIN_THROTTLE_ADDRESS_SLOWDOWN_AFTER,
                settings.LOGIN_THROTTLE_ADDRESS_LOCKOUT_AFTER,
            )
        )
    return _begin(username=username, scopes=scopes)


def first_refusal(attempt: Attempt) -> bool:
    """True once per waiting period: lets the caller audit a throttle without flooding the log."""
    _, waiting = _wait_of(attempt.scopes)
    return any(store().claim(s.logged_key, value=1, ttl=max(attempt.refused_for, 1)) for s in waiting)


def reset_username(username: str, *, ip: str | None = None, browser: str | None = None) -> None:
    """Forget a username's failures (its cap, its pair with `ip`, `browser`'s count): it proved who it is."""
    scopes = [s for s in _scopes(username=username, ip=ip) if s.belongs_to_username]
    if browser is not None:
        scopes += _scopes(username=username, ip=ip, browser=browser)
    store().delete(*(key for s in scopes for key in _keys_of(s)))


def describe_wait(seconds: int) -> str:
    """'in 45 seconds', 'in 4 minutes': for the form error."""
    if seconds < 60:
        return f"in {seconds} second{'s' if seconds != 1 else ''}"
    minutes = math.ceil(seconds / 60)
    return f"in {minutes} minute{'s' if minutes != 1 else ''}"


# --- Known browsers -------------------------------------------------------------------

KNOWN_BROWSER_COOKIE = "keygrant_known_browser"
_KNOWN_BROWSER_SALT = "accounts.throttle.known-browser"
_KNOWN_BROWSER_DAYS = 365


def known_browser(cookie: str | None, username: str) -> str | None:
    """The browser's id when its cookie says it signed in as `username` before; else None."""
    if not cookie or not username:
        return None
    try:
        data = signing.loads(cookie, salt=_KNOWN_BROWSER_SALT, max_age=_KNOWN_BROWSER_DAYS * 86400)
    except (signing.BadSignature, ValueError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("b"), str):
        return None
    return data["b"] if secrets.compare_digest(str(data.get("u", "")), _digest(username)) else None


def remember_browser(response: HttpResponse, *, username: str) -> None:
    """Mark this browser as one `username` signed in from (a signed cookie, no server state)."""
    value = signing.dumps({"u": _digest(username), "b": secrets.token_urlsafe(16)}, salt=_KNOWN_BROWSER_SALT)
    response.set_cookie(
        KNOWN_BROWSER_COOKIE,
        value,
        max_age=_KNOWN_BROWSER_DAYS * 86400,
        secure=settings.SESSION_COOKIE_SECURE,
        httponly=True,
        samesite="Lax",
    )


# --- Password reset emails ------------------------------------------------------------

_RESET_WINDOW = 3600


def reset_request_wait(*, ip: str | None) -> int:
    """Count one password-reset request from `ip`; seconds to wait when over the hourly limit (0: go ahead).

    Limits what one address can make the site send, whoever the mail is for.
    A request without a usable address is not limited here (see
    accounts.counters.address_bucket); the per-mailbox limit still holds.
    """
    bucket = address_bucket(ip)
    if bucket is None:
        return 0
    key = f"{_PREFIX}:reset:address:{bucket}"
    counters, now = store(), time.time()
    counters.claim(f"{key}:started", value=_ms(now), ttl=_RESET_WINDOW)
    if counters.hit(key, window=_RESET_WINDOW) <= settings.PASSWORD_RESET_REQUESTS_PER_HOUR:
        return 0
    started = counters.get_many([f"{key}:started"]).get(f"{key}:started", _ms(now))
    return max(1, math.ceil(started / 1000 + _RESET_WINDOW - now))


def reset_mail_allowed(*, email: str) -> bool:
    """Whether this mailbox may get another reset link this hour (the first PASSWORD_RESET_REQUESTS_PER_HOUR may).

    Past the limit the request is answered as usual but sends nothing: the
    mailbox already holds that many links from this hour, and each works
    until it is used, so its owner can always reset their password; what
    the limit stops is somebody else flooding that mailbox.
    """
    key = f"{_PREFIX}:reset:email:{_digest(email)}"
    return store().hit(key, window=_RESET_WINDOW) <= settings.PASSWORD_RESET_REQUESTS_PER_HOUR
