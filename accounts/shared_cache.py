"""The shared cache (Redis) may be down: what uses it goes on without it (issue #15).

Nothing Keygrant keeps in the cache is needed to serve a request: rate-limit
counters (accounts/counters.py falls back to the database table), fetched
metadata documents (a miss: fetch again) and the device flow's last-poll
marker (the interval is not checked). So an unreachable cache must cost
neither an answer nor time.

`guard` remembers, per process, that the cache failed: for
CACHE_RETRY_SECONDS after a failure nothing asks it (no request waits for a
timeout again), then the next use tries it once more and, when it answers,
everything goes back to it by itself. The outage is logged as an ERROR when
it starts and at most once a minute while it lasts, never per request.
"""

import importlib
import logging
import threading
import time
from typing import Any

from django.conf import settings
from django.core.cache import cache

logger = logging.getLogger(__name__)


def _client_errors() -> tuple[type[BaseException], ...]:
    """What a cache client raises when its server is down, hangs or refuses to work."""
    errors: list[type[BaseException]] = [OSError]  # refused, reset, timed out (socket-level clients)
    for module, name in (
        ("redis.exceptions", "RedisError"),  # ConnectionError, TimeoutError, BusyLoadingError, READONLY, ...
        ("pymemcache.exceptions", "MemcacheError"),
        ("pylibmc", "Error"),
    ):
        try:
            errors.append(getattr(importlib.import_module(module), name))
        except (ImportError, AttributeError):
            pass
    return tuple(errors)


CACHE_ERRORS = _client_errors()
_LOG_EVERY_SECONDS = 60


def _now() -> float:
    return time.monotonic()


class CacheGuard:
    """Per process: whether to ask the shared cache now, and the log of its outages."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.down_since: float | None = None
        self._retry_at = 0.0
        self._logged_at = 0.0
        self._skipped = 0

    def usable(self) -> bool:
        """False while a recent failure says the cache is down (until CACHE_RETRY_SECONDS have passed)."""
        if self.down_since is None:
            return True
        if _now() >= self._retry_at:
            return True  # try it again; failed() or answered() follows
        with self._lock:
            self._skipped += 1
        return False

    def failed(self, exc: BaseException, *, doing: str) -> None:
        now = _now()
        with self._lock:
            self._retry_at = now + settings.CACHE_RETRY_SECONDS
            first = self.down_since is None
            if first:
                self.down_since = now
            elif now - self._logged_at < _LOG_EVERY_SECONDS:
                return
            self._logged_at, skipped, self._skipped = now, self._skipped, 0
            lasted = now - self.down_since
        if first:
            logger.error(
                "the shared cache does not answer (%s while %s): rate limits are counted in the database, "
                "metadata documents are not cached and device polling intervals are not checked until it "
                "answers again (tried every %s s)",
                type(exc).__name__,
                doing,
                settings.CACHE_RETRY_SECONDS,
            )
        else:
            logger.error(
                "the shared cache still does not answer (%s) after %d s; %d uses went without it since the last report",
                type(exc).__name__,
                lasted,
                skipped,
            )

    def answered(self) -> None:
        if self.down_since is None:
            return
        with self._lock:
            if self.down_since is None:
                return
            lasted, self.down_since = _now() - self.down_since, None
        logger.warning("the shared cache answers again after %.1f s: rate limits are counted there again", lasted)


guard = CacheGuard()


def cache_get(key: str) -> Any:
    """The cached value, or None when absent or when the cache is down (a miss)."""
    if not guard.usable():
        return None
    try:
        value = cache.get(key)
    except CACHE_ERRORS as exc:
        guard.failed(exc, doing="reading")
        return None
    guard.answered()
    return value


def cache_set(key: str, value: Any, *, timeout: float) -> None:
    """Store `value`; nothing happens when the cache is down (it was only a cache)."""
    if not guard.usable():
        return
    try:
        cache.set(key, value, timeout=timeout)
    except CACHE_ERRORS as exc:
        guard.failed(exc, doing="writing")
        return
    guard.answered()
