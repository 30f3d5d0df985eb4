"""The counters every rate limit uses, in a store that all workers share.

Every limit (failed sign-ins, password-reset requests, failed token
requests, metadata-document fetches) counts through `store()`. Two stores:

- "cache": Django's default cache. With CACHE_URL pointing at Redis (or
  Memcached) the counts are shared by every worker of every instance, and
  INCR is atomic. Development and the tests may use local memory.
- "database": the accounts_ratecounter table (created by `migrate`), one
  atomic statement per operation (an UPSERT ... RETURNING), so every worker
  of an instance shares the counts with no set-up at all.

config/settings.py sets RATE_LIMIT_STORE: "cache" for a cache whose
increments are atomic and shared, "database" whenever the cache would be
per-process memory (or not atomic) and DEBUG is off. See docs/decisions.md.

`store()` is the one seam between the limits and their storage. With the
"cache" store it hands out the cache counters behind a fallback: while the
shared cache is down (refused, timed out, any client error) every operation
goes to the database table instead, which every worker of every instance
shares too, and back to the cache by itself once it answers
(accounts/shared_cache.py; issue #15).

Times are read from time.time() (never the database's clock), so a window
is the same length whichever store holds it. Values are integers; callers
that keep a moment (a retry-at time) store milliseconds.
"""

import hashlib
import ipaddress
import logging
import math
import random
import re
import time
from collections.abc import Iterable
from typing import Protocol

from django.conf import settings
from django.core.cache import cache
from django.db import connection

from accounts.models import RateCounter
from accounts.shared_cache import CACHE_ERRORS, guard

logger = logging.getLogger(__name__)


class Counters(Protocol):
    def hit(self, key: str, *, window: float) -> int:
        """Count one hit in a fixed window that starts at the first hit; returns the count, this one included."""

    def unhit(self, key: str) -> None:
        """Take back one hit (an attempt that turned out not to count)."""

    def peek(self, key: str) -> int:
        """The count in the current window (0 when none)."""

    def claim(self, key: str, *, value: int, ttl: float) -> bool:
        """Set `key` unless it is set and live; True when this call set it (a lock, a first-time marker)."""

    def put(self, key: str, *, value: int, ttl: float) -> None:
        """Set `key` for `ttl` seconds, whatever it held."""

    def get_many(self, keys: Iterable[str]) -> dict[str, int]:
        """The live values among `keys`."""

    def delete(self, *keys: str) -> None:
        """Forget `keys`."""


def store() -> Counters:
    """The store settings.RATE_LIMIT_STORE names (the cache one falls back to the database while down)."""
    if settings.RATE_LIMIT_STORE == "database":
        return _database
    return _cache_or_database


_SAFE_KEY = re.compile(r"[A-Za-z0-9:._/|-]{1,200}")


def _fit(key: str) -> str:
    """A key every store takes (200 characters for the table, no spaces for memcached): else a hash of it."""
    if _SAFE_KEY.fullmatch(key):
        return key
    return "h:" + hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


class CacheCounters:
    """Counters in Django's default cache (Redis: shared and atomic; local memory: this process only)."""

    @staticmethod
    def _timeout(ttl: float) -> int:
        return max(1, math.ceil(ttl))

    def hit(self, key: str, *, window: float) -> int:
        cache.add(_fit(key), 0, timeout=self._timeout(window))
        try:
            return cache.incr(_fit(key))
        except ValueError:  # expired between add and incr
            cache.set(_fit(key), 1, timeout=self._timeout(window))
            return 1

    def unhit(self, key: str) -> None:
        try:
            if (cache.get(_fit(key)) or 0) > 0:
                cache.decr(_fit(key))
        except ValueError:  # expired meanwhile: nothing to take back
            pass

    def peek(self, key: str) -> int:
        return cache.get(_fit(key)) or 0

    def claim(self, key: str, *, value: int, ttl: float) -> bool:
        return cache.add(_fit(key), value, timeout=self._timeout(ttl))

    def put(self, key: str, *, value: int, ttl: float) -> None:
        cache.set(_fit(key), value, timeout=self._timeout(ttl))

    def get_many(self, keys: Iterable[str]) -> dict[str, int]:
        names = {_fit(key): key for key in keys}
        return {names[name]: value for name, value in cache.get_many(list(names)).items()}

    def delete(self, *keys: str) -> None:
        cache.delete_many([_fit(key) for key in keys])


class DatabaseCounters:
    """Counters in accounts_ratecounter: each operation is one statement, atomic on SQLite and PostgreSQL.

    Expired rows are treated as absent and purged now and then (1 hit in
    PURGE_EVERY), so the table holds roughly the live windows.
    """

    PURGE_EVERY = 200

    @property
    def _table(self) -> str:
        return connection.ops.quote_name(RateCounter._meta.db_table)

    def _one(self, sql: str, params: list) -> tuple | None:
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchone()

    def hit(self, key: str, *, window: float) -> int:
        t, now = self._table, time.time()
        # Both CASEs read the row as it was: a live window counts on, an expired one starts again at 1.
        row = self._one(
            f"INSERT INTO {t} (name, value, expires_at) VALUES (%s, 1, %s) "
            f"ON CONFLICT (name) DO UPDATE SET "
            f"value = CASE WHEN {t}.expires_at <= %s THEN 1 ELSE {t}.value + 1 END, "
            f"expires_at = CASE WHEN {t}.expires_at <= %s THEN excluded.expires_at ELSE {t}.expires_at END "
            f"RETURNING value",
            [_fit(key), now + window, now, now],
        )
        if random.randrange(self.PURGE_EVERY) == 0:
            self.purge_expired()
        return int(row[0])

    def unhit(self, key: str) -> None:
        t = self._table
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {t} SET value = value - 1 WHERE name = %s AND value > 0 AND expires_at > %s",
                [_fit(key), time.time()],
            )

    def peek(self, key: str) -> int:
        sql = f"SELECT value FROM {self._table} WHERE name = %s AND expires_at > %s"
        row = self._one(sql, [_fit(key), time.time()])
        return int(row[0]) if row else 0

    def claim(self, key: str, *, value: int, ttl: float) -> bool:
        t, now = self._table, time.time()
        row = self._one(
            f"INSERT INTO {t} (name, value, expires_at) VALUES (%s, %s, %s) "
            f"ON CONFLICT (name) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at "
            f"WHERE {t}.expires_at <= %s "
            f"RETURNING value",
            [_fit(key), value, now + ttl, now],
        )
        return row is not None

    def put(self, key: str, *, value: int, ttl: float) -> None:
        t = self._table
        self._one(
            f"INSERT INTO {t} (name, value, expires_at) VALUES (%s, %s, %s) "
            f"ON CONFLICT (name) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at "
            f"RETURNING value",
            [_fit(key), value, time.time() + ttl],
        )

    def get_many(self, keys: Iterable[str]) -> dict[str, int]:
        names = {_fit(key): key for key in keys}
        if not names:
            return {}
        placeholders = ", ".join(["%s"] * len(names))
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT name, value FROM {self._table} WHERE name IN ({placeholders}) AND expires_at > %s",
                [*names, time.time()],
            )
            return {names[name]: int(value) for name, value in cursor.fetchall()}

    def delete(self, *keys: str) -> None:
        if not keys:
            return
        placeholders = ", ".join(["%s"] * len(keys))
        with connection.cursor() as cursor:
            cursor.execute(f"DELETE FROM {self._table} WHERE name IN ({placeholders})", [_fit(k) for k in keys])

    def purge_expired(self) -> int:
        with connection.cursor() as cursor:
            cursor.execute(f"DELETE FROM {self._table} WHERE expires_at <= %s", [time.time()])
            return cursor.rowcount


class FallbackCounters:
    """The shared cache's counters, or the database's while the cache is down (see accounts/shared_cache.py).

    The database is the fallback, not this process's memory: the limits stay
    shared by every worker of every instance during the outage, as DESIGN.md
    asks of them. What is lost is what the cache held: windows counted there
    start again in the table, and again in the cache when it is back.
    """

    def __init__(self, primary: Counters, fallback: Counters) -> None:
        self.primary, self.fallback = primary, fallback

    def _either(self, operation: str, *args, **kwargs):
        if guard.usable():
            try:
                result = getattr(self.primary, operation)(*args, **kwargs)
            except CACHE_ERRORS as exc:
                guard.failed(exc, doing=f"counting ({operation})")
            else:
                guard.answered()
                return result
        return getattr(self.fallback, operation)(*args, **kwargs)

    def hit(self, key: str, *, window: float) -> int:
        return self._either("hit", key, window=window)

    def unhit(self, key: str) -> None:
        self._either("unhit", key)

    def peek(self, key: str) -> int:
        return self._either("peek", key)

    def claim(self, key: str, *, value: int, ttl: float) -> bool:
        return self._either("claim", key, value=value, ttl=ttl)

    def put(self, key: str, *, value: int, ttl: float) -> None:
        self._either("put", key, value=value, ttl=ttl)

    def get_many(self, keys: Iterable[str]) -> dict[str, int]:
        return self._either("get_many", list(keys))

    def delete(self, *keys: str) -> None:
        self._either("delete", *keys)


_cache = CacheCounters()
_database = DatabaseCounters()
_cache_or_database = FallbackCounters(_cache, _database)


def count_hit(key: str, *, window: float) -> int:
    """Count one hit under `key`; returns the count in the window so far (this one included)."""
    return store().hit(key, window=window)


def hits(key: str) -> int:
    """Hits counted under `key` in its current window."""
    return store().peek(key)


def address_bucket(ip: str | None) -> str | None:
    """What a per-address limit counts: an IPv4 address, or an IPv6 address's /64; None for no address.

    One IPv6 subscriber usually holds a whole /64, so counting single IPv6
    addresses would give one attacker 2^64 fresh counters. A request whose
    address is unknown (no REMOTE_ADDR behind a unix socket, a proxy
    header that is no address) is in no bucket: putting all of them in one
    would let a single client throttle everybody else. Callers then skip
    the per-address limit; the other limits still hold.
    """
    if not ip:
        _warn_unknown_address()
        return None
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        _warn_unknown_address()
        return None
    if address.version == 6:
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


_warned = False


def _warn_unknown_address() -> None:
    global _warned
    if not _warned:
        _warned = True
        logger.warning(
            "a request came without a usable client address: per-address rate limits cannot apply to it "
            "(behind a reverse proxy, set TRUSTED_PROXY_COUNT)"
        )
