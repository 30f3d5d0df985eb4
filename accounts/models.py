import functools
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.db import connection, models
from django.utils import timezone

from accounts import keys
from accounts import limits as key_limits
from accounts.rows import Select


class User(AbstractUser):
    """The person who owns API keys and grants consent."""

    class Meta:
        db_table = "accounts_user"


class ApiKeyQuerySet(models.QuerySet):
    def active(self) -> "ApiKeyQuerySet":
        """Not revoked (an expired key is still listed here: expiry is a limit, revocation an act)."""
        return self.filter(revoked_at__isnull=True)

    def usable(self, now=None) -> "ApiKeyQuerySet":
        """Not revoked and not expired: the keys that may still be handed to an app."""
        now = now or timezone.now()
        return self.active().filter(models.Q(expires_at__isnull=True) | models.Q(expires_at__gt=now))

    def for_raw_key(self, raw: str) -> "ApiKey | None":
        """The active key matching `raw`, found by hash (no decryption).

        Its limits (expiry, addresses) are columns of the same row: callers
        check them with `ApiKey.refusal`, at no further query.
        """
        if not keys.looks_like_key(raw):
            return None
        return self.active().select_related("user").filter(key_hash=keys.hash_key(raw)).first()

    def usable_by_id(self, pk: int, *, user: User, now) -> "ApiKey | None":
        """`user`'s key `pk` if it is usable (not revoked, not expired at `now`): one fixed statement.

        Every consent with an existing key checks the choice (accounts/rows.py says why fixed).
        """
        return _usable_by_id().first([pk, user.pk, connection.ops.adapt_datetimefield_value(now)])

    def for_api_call(self, raw: str) -> "ApiKey | None":
        """Like `for_raw_key`, for the API's every call: only what a call needs, in one fixed statement.

        The key's id, name, prefix, last use and limits, and its owner's
        username and name (as `owner_username`, `owner_first_name`,
        `owner_last_name`); other fields are not loaded. A fixed raw
        statement costs the ORM no compiling per call (a third of the
        request's time in the benchmark, docs/benchmarks.md); field
        converters still apply, so it reads the same on every database.
        """
        if not keys.looks_like_key(raw):
            return None
        return _api_call().first([keys.hash_key(raw)])


@functools.cache
def _usable_by_id() -> Select:
    return Select(
        ApiKey,
        f"SELECT {{fields}} FROM {ApiKey._meta.db_table} WHERE id = %s AND user_id = %s"
        " AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > %s)",
    )


@functools.cache
def _api_call() -> Select:
    """The statement behind `for_api_call`, with table and column names from the models."""

    def columns(model, *names: str) -> list[str]:
        return [model._meta.get_field(name).column for name in names]

    user_id, key_hash, revoked_at = columns(ApiKey, "user", "key_hash", "revoked_at")
    owner_id, username, first_name, last_name = columns(User, "id", "username", "first_name", "last_name")
    return Select(
        ApiKey,
        "SELECT {fields},"
        f" u.{username} AS owner_username, u.{first_name} AS owner_first_name, u.{last_name} AS owner_last_name"
        f" FROM {ApiKey._meta.db_table} k JOIN {User._meta.db_table} u ON u.{owner_id} = k.{user_id}"
        f" WHERE k.{key_hash} = %s AND k.{revoked_at} IS NULL",
        alias="k",
        fields=("id", "user", "name", "prefix", "last_used_at", "expires_at", "allowed_networks"),
        extra=("owner_username", "owner_first_name", "owner_last_name"),
    )


class ApiKey(models.Model):
    """A user's API key. Stored encrypted (recoverable) and hashed (lookup)."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=100)
    # Indexed for the admin's prefix search (a LIKE 'kg_abc%' index on PostgreSQL).
    prefix = models.CharField(max_length=16, db_index=True, help_text="The visible start of the key.")
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    key_encrypted = models.TextField(editable=False)
    # The client hostname whose consent created this key ("" if the user made
    # it). A string, not a foreign key: accounts knows nothing of grants.
    created_for_client = models.CharField(max_length=255, blank=True, db_index=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True, db_index=True)
    # Limits chosen by the owner (accounts.limits): checked wherever the key is.
    expires_at = models.DateTimeField(null=True, blank=True, db_index=True)
    allowed_networks = models.JSONField(
        default=list, blank=True, help_text="Normalised IPv4/IPv6 networks the key works from; empty: anywhere."
    )

    objects = ApiKeyQuerySet.as_manager()

    class Meta:
        verbose_name = "API key"
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["user", "revoked_at"])]

    def __str__(self) -> str:
        # Wherever the admin names a key (a grant's, a code's), an expired or revoked one says so.
        status = "" if self.status == "active" else f", {self.status}"
        return f"{self.name} ({self.masked}{status})"

    @property
    def masked(self) -> str:
        return f"{self.prefix}…"

    @property
    def is_active(self) -> bool:
        """Not revoked. See `is_usable` for "not revoked and not expired"."""
        return self.revoked_at is None

    def is_expired(self, now=None) -> bool:
        return self.expires_at is not None and (now or timezone.now()) >= self.expires_at

    def is_usable(self, now=None) -> bool:
        return self.is_active and not self.is_expired(now)

    @property
    def status(self) -> str:
        """ "revoked", "expired" or "active", as every page shows it."""
        if not self.is_active:
            return "revoked"
        return "expired" if self.is_expired() else "active"

    @property
    def limits(self) -> key_limits.KeyLimits:
        return key_limits.KeyLimits(expires_at=self.expires_at, allowed_networks=tuple(self.allowed_networks))

    def refusal(self, *, address: str | None, now=None) -> str | None:
        """Which of the key's limits refuses a use from `address` now (accounts.limits), or None."""
        return key_limits.refusal(
            expires_at=self.expires_at,
            allowed_networks=self.allowed_networks,
            address=address,
            now=now or timezone.now(),
        )

    def plaintext(self) -> str:
        """The key itself: only for handing it to the app the user consented to."""
        return keys.decrypt_key(self.key_encrypted)

    def last_used_is_stale(self, now) -> bool:
        resolution = timedelta(seconds=settings.API_KEY_LAST_USED_RESOLUTION_SECONDS)
        return self.last_used_at is None or now - self.last_used_at >= resolution


class AuditEventQuerySet(models.QuerySet):
    """Append-only: bulk updates and deletes are refused."""

    def update(self, **kwargs):
        raise PermissionError("audit events are append-only")

    def delete(self):
        raise PermissionError("audit events are append-only")


class AuditEvent(models.Model):
    """One security-relevant event, written in the transaction of the change."""

    class Kind(models.TextChoices):
        CONSENT_GRANTED = "consent_granted", "Consent granted"
        CONSENT_DENIED = "consent_denied", "Consent denied"
        CODE_ISSUED = "code_issued", "Authorization code issued"
        TOKEN_ISSUED = "token_issued", "Key handed out (code redeemed)"
        CODE_REPLAY = "code_replay", "Code replay detected"
        GRANT_REVOKED = "grant_revoked", "Grant revoked"
        KEY_CREATED = "key_created", "Key created"
        KEY_RENAMED = "key_renamed", "Key renamed"
        KEY_REVOKED = "key_revoked", "Key revoked"
        KEK_ROTATED = "kek_rotated", "Key-encryption key rotated"
        LOGIN_FAILED = "login_failed", "Login failed"
        LOGIN_THROTTLED = "login_throttled", "Login throttled"
        RESOURCE_SERVER_CREATED = "resource_server_created", "Introspection credentials issued"
        RESOURCE_SERVER_REVOKED = "resource_server_revoked", "Introspection credentials revoked"
        RESOURCE_SERVER_CHANGED = "resource_server_changed", "Introspection resources changed"
        KEY_LIMITS_CHANGED = "key_limits_changed", "Key limits changed"
        CLIENT_BLOCKED = "client_blocked", "Client blocked"
        CLIENT_UNBLOCKED = "client_unblocked", "Client unblocked"
        FACTOR_ADDED = "factor_added", "Second factor added"
        FACTOR_REMOVED = "factor_removed", "Second factor removed"
        FACTORS_RESET = "factors_reset", "Second factors removed by an operator"
        RECOVERY_CODES_GENERATED = "recovery_codes_generated", "Recovery codes generated"
        RECOVERY_CODE_USED = "recovery_code_used", "Recovery code used"
        SECOND_FACTOR_FAILED = "second_factor_failed", "Second factor failed"
        SECOND_FACTOR_THROTTLED = "second_factor_throttled", "Second factor throttled"
        PASSKEY_SIGNIN = "passkey_signin", "Signed in with a passkey"

    class Actor(models.TextChoices):
        USER = "user", "User"
        ADMIN = "admin", "Admin"
        CLIENT = "client", "Client app"
        SYSTEM = "system", "System"

    created_at = models.DateTimeField(default=timezone.now, editable=False, db_index=True)
    kind = models.CharField(max_length=32, choices=Kind.choices, editable=False)
    actor_kind = models.CharField(max_length=16, choices=Actor.choices, editable=False)
    # PROTECT: an event is never modified, not even to forget a deleted user
    # (SET_NULL would rewrite history). A user who appears in the log is
    # deactivated rather than deleted; the database's foreign key refuses the
    # delete too. See docs/operations.md "The audit log".
    # No index of their own: the (actor, -created_at) and (subject,
    # -created_at) indexes below serve every lookup by either, and each index
    # is one more write on every event the token exchange and consent record.
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        editable=False,
        db_index=False,
    )
    subject = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="audit_events",
        editable=False,
        db_index=False,
    )
    client_id = models.CharField(max_length=255, blank=True, editable=False)
    key_prefix = models.CharField(max_length=16, blank=True, editable=False, db_index=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True, editable=False)
    user_agent = models.CharField(max_length=300, blank=True, editable=False)
    detail = models.JSONField(default=dict, blank=True, editable=False)

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        # One per admin filter, each in the list's newest-first order.
        indexes = [
            models.Index(fields=["subject", "-created_at"]),
            models.Index(fields=["actor", "-created_at"]),
            models.Index(fields=["kind", "-created_at"]),
            models.Index(fields=["client_id", "-created_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} at {self.created_at:%Y-%m-%d %H:%M:%S}"

    def save(self, *args, **kwargs):
        if self.pk is not None and not self._state.adding:
            raise PermissionError("audit events are append-only")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise PermissionError("audit events are append-only")


class RateCounter(models.Model):
    """One rate-limit counter or marker of the database store (accounts.counters).

    Written only with single atomic statements there; `expires_at` is a
    time.time() value, and an expired row counts as absent.
    """

    name = models.CharField(max_length=200, primary_key=True)
    value = models.BigIntegerField()
    expires_at = models.FloatField(db_index=True)

    def __str__(self) -> str:
        return self.name


class Notification(models.Model):
    """One email to a person, written in the transaction of the event it tells about (accounts.notifications).

    A rolled-back change leaves no row, so nothing is sent; a committed one
    always has its row, so nothing is lost. Senders claim rows before sending,
    so no notice is sent twice, whatever number of senders run. Bodies never
    hold a key, a code or a verifier (a key's visible prefix at most).
    """

    class Kind(models.TextChoices):
        APP_GOT_KEY = "app_got_key", "An app got a key"
        ACCESS_REVOKED = "access_revoked", "An app's access was revoked"
        KEY_EXPIRING = "key_expiring", "A key an app holds expires soon"
        FACTOR_CHANGED = "factor_changed", "A second factor was added or removed"
        RECOVERY_CODE_USED = "recovery_code_used", "A recovery code was used"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications")
    kind = models.CharField(max_length=32, choices=Kind.choices)
    to_address = models.EmailField()
    subject = models.CharField(max_length=200)
    body = models.TextField()
    # Set for notices that must exist once whoever queues them (a key's expiry notice).
    dedupe_key = models.CharField(max_length=100, unique=True, null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    attempts = models.PositiveSmallIntegerField(default=0)
    # A sender owns the row until then (its claim); afterwards another may retry it.
    claimed_until = models.DateTimeField(null=True, blank=True)
    claim_token = models.CharField(max_length=32, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    failed_at = models.DateTimeField(null=True, blank=True, help_text="Given up after the last attempt.")
    last_error = models.CharField(max_length=300, blank=True)

    class Meta:
        verbose_name = "notice"
        verbose_name_plural = "outgoing mail"
        ordering = ["-created_at"]
        indexes = [
            # The senders' question: which unsent notices are due?
            models.Index(
                fields=["next_attempt_at"],
                name="notification_due",
                condition=models.Q(sent_at__isnull=True, failed_at__isnull=True),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} to {self.to_address} ({self.status})"

    @property
    def status(self) -> str:
        if self.sent_at:
            return "sent"
        if self.failed_at:
            return "failed"
        return "retrying" if self.attempts else "queued"


# --- Second factors (accounts.second_factor, accounts.factor_services) ---------------------


class TotpDevice(models.Model):
    """A person's authenticator app (TOTP, RFC 6238): one per person.

    The shared secret is encrypted at rest like API keys (accounts.keys,
    KEY_ENCRYPTION_KEYS); it only counts once a first code confirmed it.
    `last_used_step` is the time step of the last code accepted: a code of
    that step or an earlier one is refused (a replayed code).
    """

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="totp")
    secret_encrypted = models.TextField(editable=False)
    created_at = models.DateTimeField(default=timezone.now)
    confirmed_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    last_used_step = models.BigIntegerField(default=0, editable=False)

    class Meta:
        verbose_name = "authenticator app"

    def __str__(self) -> str:
        return f"Authenticator app of user {self.user_id}"

    @property
    def is_confirmed(self) -> bool:
        return self.confirmed_at is not None

    def secret(self) -> str:
        """The shared secret (base32): only to show it while enrolling, and to check codes."""
        return keys.decrypt_secret(self.secret_encrypted)


class Passkey(models.Model):
    """A WebAuthn credential (a passkey) of a person, as py_webauthn verified it at registration."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="passkeys")
    name = models.CharField(max_length=100)
    # base64url of the raw credential id (at most 1023 bytes, WebAuthn level 3).
    credential_id = models.CharField(max_length=1400, unique=True, editable=False)
    public_key = models.BinaryField(editable=False, help_text="COSE public key, as the library returns it.")
    sign_count = models.BigIntegerField(default=0, editable=False)
    # The WebAuthn user handle (base64url of random bytes): the same for all of a person's passkeys.
    user_handle = models.CharField(max_length=100, db_index=True, editable=False)
    transports = models.JSONField(default=list, blank=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "pk"]

    def __str__(self) -> str:
        return f"Passkey “{self.name}”"


class RecoveryCode(models.Model):
    """A one-time recovery code: only its SHA-256 is stored (80 random bits: no slow hash needed)."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="recovery_codes")
    code_hash = models.CharField(max_length=64, editable=False)
    created_at = models.DateTimeField(default=timezone.now)
    used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["user", "code_hash"])]

    def __str__(self) -> str:
        return f"Recovery code of user {self.user_id} ({'used' if self.used_at else 'unused'})"
