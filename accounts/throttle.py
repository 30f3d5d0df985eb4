"""Rate limits: counters in the shared cache, and login throttling built on them.

`count_hit` and `hits` are the one counter every limit uses (failed sign-ins,
password-reset requests, failed token requests). Counted in Django's default
cache, so with a shared cache (CACHE_URL=redis...) the limits hold across
every app server. Nothing here sleeps: "slowing down"
means each failure past a threshold makes the next attempt wait longer
(doubling), and the lockout threshold refuses attempts for a fixed time.
While a username or address is waiting, attempts are refused before the
password is checked, so they reveal nothing and cost no password hash.

Settings (see docs/accounts.md): LOGIN_THROTTLE_WINDOW_SECONDS,
LOGIN_THROTTLE_USERNAME_SLOWDOWN_AFTER, LOGIN_THROTTLE_USERNAME_LOCKOUT_AFTER,
LOGIN_THROTTLE_ADDRESS_SLOWDOWN_AFTER, LOGIN_THROTTLE_ADDRESS_LOCKOUT_AFTER,
LOGIN_THROTTLE_DELAY_SECONDS, LOGIN_THROTTLE_LOCKOUT_SECONDS.
"""

import hashlib
import math
import time
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache

_PREFIX = "accounts:login-throttle"


@dataclass(frozen=True)
class _Scope:
    name: str  # "username" or "address"
    ident: str  # a hash or an IP address: safe as a cache key, never the raw username

    @property
    def count_key(self) -> str:
        return f"{_PREFIX}:{self.name}:{self.ident}:failures"

    @property
    def wait_key(self) -> str:
        return f"{_PREFIX}:{self.name}:{self.ident}:retry-at"

    @property
    def logged_key(self) -> str:
        return f"{_PREFIX}:{self.name}:{self.ident}:logged"

    def limits(self) -> tuple[int, int]:
        """(slow down after, lock out after) failures."""
        if self.name == "username":
            return settings.LOGIN_THROTTLE_USERNAME_SLOWDOWN_AFTER, settings.LOGIN_THROTTLE_USERNAME_LOCKOUT_AFTER
        return settings.LOGIN_THROTTLE_ADDRESS_SLOWDOWN_AFTER, settings.LOGIN_THROTTLE_ADDRESS_LOCKOUT_AFTER


def _username_scope(username: str) -> _Scope:
    # Case-folded, so "Alice" and "alice" share one counter; hashed, so the
    # cache never holds what someone typed (it may be a mistyped password).
    digest = hashlib.sha256(username.strip().casefold().encode()).hexdigest()[:32]
    return _Scope("username", digest)


def _address_scope(ip: str | None) -> _Scope:
    return _Scope("address", ip or "unknown")


def _scopes(username: str, ip: str | None) -> list[_Scope]:
    return [_username_scope(username), _address_scope(ip)]


def delay_after(failures: int, *, slowdown_after: int, lockout_after: int) -> int:
    """Seconds the next attempt must wait after `failures` failures in the window."""
    if failures >= lockout_after:
        return settings.LOGIN_THROTTLE_LOCKOUT_SECONDS
    if failures >= slowdown_after:
        doubling = min(failures - slowdown_after, 20)
        return min(settings.LOGIN_THROTTLE_DELAY_SECONDS * 2**doubling, settings.LOGIN_THROTTLE_LOCKOUT_SECONDS)
    return 0


def retry_after(*, username: str, ip: str | None) -> int:
    """Seconds until this username and address may try again (0: now)."""
    scopes = _scopes(username, ip)
    stored = cache.get_many([s.wait_key for s in scopes])
    now = time.time()
    waits = [math.ceil(retry_at - now) for retry_at in stored.values() if isinstance(retry_at, (int, float))]
    return max([0, *waits])


def count_hit(key: str, *, window: int) -> int:
    """Count one hit in a fixed window that starts at the first; returns the count so far."""
    cache.add(key, 0, timeout=window)
    try:
        return cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.set(key, 1, timeout=window)
        return 1


def hits(key: str) -> int:
    """Hits counted under `key` in its current window."""
    return cache.get(key) or 0


def record_failure(*, username: str, ip: str | None) -> int:
    """Count one failed sign-in; returns the seconds the next attempt must wait."""
    now = time.time()
    longest = 0
    for scope in _scopes(username, ip):
        slowdown_after, lockout_after = scope.limits()
        wait = delay_after(
            count_hit(scope.count_key, window=settings.LOGIN_THROTTLE_WINDOW_SECONDS),
            slowdown_after=slowdown_after,
            lockout_after=lockout_after,
        )
        if wait:
            cache.set(scope.wait_key, now + wait, timeout=wait)
            longest = max(longest, wait)
    return longest


def first_refusal(*, username: str, ip: str | None, wait: int) -> bool:
    """True once per waiting period: lets the caller audit a throttle without flooding the log."""
    return any(cache.add(s.logged_key, 1, timeout=max(wait, 1)) for s in _scopes(username, ip) if _is_waiting(s))


def _is_waiting(scope: _Scope) -> bool:
    retry_at = cache.get(scope.wait_key)
    return isinstance(retry_at, (int, float)) and retry_at > time.time()


def reset_username(username: str) -> None:
    """A successful sign-in clears its username's failures (not the address's)."""
    scope = _username_scope(username)
    cache.delete_many([scope.count_key, scope.wait_key, scope.logged_key])


def describe_wait(seconds: int) -> str:
    """'in 45 seconds', 'in 4 minutes': for the form error."""
    if seconds < 60:
        return f"in {seconds} second{'s' if seconds != 1 else ''}"
    minutes = math.ceil(seconds / 60)
    return f"in {minutes} minute{'s' if minutes != 1 else ''}"


# --- Password reset emails ------------------------------------------------------

_RESET_WINDOW = 3600


def reset_request_wait(*, email: str, ip: str | None) -> int:
    """Count one password-reset request; seconds to wait when over the hourly limit (0: go ahead).

    Limits both the requesting address and the target mailbox, whether or not
    an account uses it, so the form can neither flood a mailbox nor tell
    which addresses have accounts.
    """
    digest = hashlib.sha256(email.strip().casefold().encode()).hexdigest()[:32]
    now = time.time()
    waits = []
    for ident in (f"email:{digest}", f"address:{ip or 'unknown'}"):
        key = f"{_PREFIX}:reset:{ident}"
        cache.add(f"{key}:started", now, timeout=_RESET_WINDOW)
        started = cache.get(f"{key}:started", now)
        if count_hit(key, window=_RESET_WINDOW) > settings.PASSWORD_RESET_REQUESTS_PER_HOUR:
            waits.append(max(1, math.ceil(started + _RESET_WINDOW - now)))
    return max([0, *waits])
