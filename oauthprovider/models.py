import functools

from django.conf import settings
from django.db import connection, models
from django.utils import timezone

from accounts.audit import write_with_event
from accounts.models import ApiKey
from accounts.rows import Select
from oauthprovider import protocol


class GrantQuerySet(models.QuerySet):
    def for_consent(self, *, user, client_id: str, first_authorized_at) -> "Grant":
        """The user's grant for the client, created if they have none, and locked for this transaction.

        Every consent reads it, so the usual case is one fixed statement
        (accounts/rows.py says why); a first consent creates it through the
        ORM, which also settles two concurrent first consents.
        """
        grant = _grant_for_consent().first([user.pk, client_id])
        if grant is None:
            grant, _ = self.select_for_update().get_or_create(
                user=user, client_id=client_id, defaults={"first_authorized_at": first_authorized_at}
            )
        grant.user = user  # already loaded: no query when the code and its event name the user
        return grant


@functools.cache
def _grant_for_consent() -> Select:
    lock = " FOR UPDATE" if connection.features.has_select_for_update else ""
    return Select(Grant, f"SELECT {{fields}} FROM {Grant._meta.db_table} WHERE user_id = %s AND client_id = %s{lock}")


class Grant(models.Model):
    """A user's consent for one client hostname, and which key it handed out."""

    # What `authorize` changes (written with one fixed UPDATE, accounts/rows.py).
    AUTHORIZED_FIELDS = (
        "scope",
        "resources",
        "client_name",
        "key",
        "key_created_by_consent",
        "last_authorized_at",
        "revoked_at",
        "revoked_by",
        "revoked_by_user",
    )

    class RevokedBy(models.TextChoices):
        USER = "user", "The user"
        ADMIN = "admin", "An administrator"
        REPLAY = "replay", "Code replay detected"
        CLIENT = "client", "The app itself"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="grants")
    client_id = models.CharField(
        max_length=255, help_text="The app's hostname (IDNA A-labels), or its metadata document URL."
    )
    # The name a metadata-document client gives itself (unverified; shown beside the host).
    client_name = models.CharField(max_length=100, blank=True)
    scope = models.CharField(max_length=100)
    # RFC 8707 resources the last consent named; introspection reports them as `aud`.
    resources = models.JSONField(default=list, blank=True)
    key = models.ForeignKey(ApiKey, null=True, blank=True, on_delete=models.SET_NULL, related_name="grants")
    # True when this consent created the key (rather than the user choosing an
    # existing one): revoking the grant then revokes the key too.
    key_created_by_consent = models.BooleanField(default=False)
    first_authorized_at = models.DateTimeField(default=timezone.now)
    last_authorized_at = models.DateTimeField(default=timezone.now, db_index=True)
    revoked_at = models.DateTimeField(null=True, blank=True, db_index=True)
    revoked_by = models.CharField(max_length=16, choices=RevokedBy.choices, blank=True)
    revoked_by_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "client_id"], name="one_grant_per_user_and_client")]
        indexes = [models.Index(fields=["client_id"])]
        ordering = ["-last_authorized_at"]

    objects = GrantQuerySet.as_manager()

    def __str__(self) -> str:
        return f"{self.client_id} for {self.user}"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None

    def authorize(self, *, scope: str, resources, client_name: str, key: ApiKey, key_is_new: bool, at) -> None:
        """A new consent: the grant is active again and names its key (AUTHORIZED_FIELDS; saved by the caller)."""
        self.scope = scope
        self.resources = list(resources)
        self.client_name = client_name
        self.key = key
        self.key_created_by_consent = key_is_new
        self.last_authorized_at = at
        self.revoked_at, self.revoked_by, self.revoked_by_user = None, "", None

    def revoke(self, *, by: str, by_user, at) -> bool:
        """Mark the grant revoked unless it already is; False then.

        One conditional UPDATE, so that of concurrent revocations exactly one counts.
        """
        revoked = Grant.objects.filter(pk=self.pk, revoked_at__isnull=True).update(
            revoked_at=at, revoked_by=by, revoked_by_user=by_user
        )
        if revoked:
            self.revoked_at, self.revoked_by, self.revoked_by_user = at, by, by_user
        return bool(revoked)


class AuthorizationCodeQuerySet(models.QuerySet):
    """The token endpoint's two statements, fixed SQL: the ORM's compiling cost more than the
    database's work on this path (docs/benchmarks.md), and they run on every exchange."""

    def for_redemption(self, code_hash: str, *, now) -> "AuthorizationCode | None":
        """The code, with what its redemption checks of its key and grant, in one read.

        The code's fields in REDEMPTION_FIELDS (the others are deferred) and
        `key_prefix`, `key_ciphertext`, `key_active`, `key_unexpired` (at
        `now`), `grant_client_id` and `grant_active`. Its `key` and `grant`
        themselves are not loaded.
        """
        params = [connection.ops.adapt_datetimefield_value(now), code_hash]
        return _redemption(by_function=connection.vendor == "postgresql").first(params)

    def claim(self, code: "AuthorizationCode", *, now, event: dict) -> bool:
        """Mark the code redeemed, with its audit `event` (accounts.audit.audit_row), unless it already is.

        One conditional UPDATE, so of concurrent claims exactly one wins; the
        event is written with it (accounts.audit.write_with_event).
        """
        quote = connection.ops.quote_name
        update = f"UPDATE {quote(self.model._meta.db_table)} SET redeemed_at = %s WHERE id = %s AND redeemed_at IS NULL"
        stamp = connection.ops.adapt_datetimefield_value(now)
        return write_with_event(update, [stamp, code.pk], event) == 1


# What the token exchange reads of a code; the same columns as the PostgreSQL function's.
REDEMPTION_FIELDS = (
    "id", "user", "grant", "key", "client_id", "redirect_uri", "scope", "code_challenge",
    "resources", "expires_at", "redeemed_at",
)  # fmt: skip
REDEMPTION_EXTRA = ("key_prefix", "key_ciphertext", "key_active", "key_unexpired", "grant_client_id", "grant_active")


@functools.cache
def _redemption(*, by_function: bool) -> Select:
    """The read behind for_redemption; parameters (now, code hash).

    `by_function` (PostgreSQL only): a call of the function that migration
    0010 creates, which runs the same join but plans it once per connection
    instead of on every exchange (docs/benchmarks.md).
    """
    if by_function:
        extra = ", ".join(f"c.{name}" for name in REDEMPTION_EXTRA)
        source = f"SELECT {{fields}}, {extra} FROM oauthprovider_code_for_redemption(%s, %s) c"
    else:
        code, key, grant = AuthorizationCode._meta, ApiKey._meta, Grant._meta
        source = (
            "SELECT {fields}, k.prefix AS key_prefix, k.key_encrypted AS key_ciphertext,"
            " (k.revoked_at IS NULL) AS key_active, (k.expires_at IS NULL OR k.expires_at > %s) AS key_unexpired,"
            " g.client_id AS grant_client_id, (g.revoked_at IS NULL) AS grant_active"
            f" FROM {code.db_table} c JOIN {key.db_table} k ON k.id = c.key_id"
            f" JOIN {grant.db_table} g ON g.id = c.grant_id"
            " WHERE c.code_hash = %s"
        )
    return Select(AuthorizationCode, source, alias="c", fields=REDEMPTION_FIELDS, extra=REDEMPTION_EXTRA)


class AuthorizationCode(models.Model):
    """A one-time code (RFC 6749 section 4.1.2). Only its hash is stored."""

    code_hash = models.CharField(max_length=64, unique=True, editable=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    grant = models.ForeignKey(Grant, on_delete=models.CASCADE, related_name="codes")
    key = models.ForeignKey(ApiKey, on_delete=models.CASCADE, related_name="+")
    key_created_by_consent = models.BooleanField(default=False)
    client_id = models.CharField(max_length=255)
    redirect_uri = models.TextField()
    scope = models.CharField(max_length=100)
    code_challenge = models.CharField(max_length=43)
    # RFC 8707 resource indicators the authorization request named.
    resources = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(db_index=True)
    # Not indexed: the redemption sets it, and an UPDATE that changes no
    # indexed column can be a heap-only (HOT) update on PostgreSQL, writing
    # none of the table's indexes (docs/benchmarks.md).
    redeemed_at = models.DateTimeField(null=True, blank=True)
    failed_attempts = models.PositiveIntegerField(default=0)

    objects = AuthorizationCodeQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        # The admin's list order and date filter; purge_codes uses expires_at.
        indexes = [models.Index(fields=["created_at"])]

    def __str__(self) -> str:
        return f"code for {self.client_id} ({self.state_label})"

    def is_expired(self, now=None) -> bool:
        return (now or timezone.now()) >= self.expires_at

    @property
    def state_label(self) -> str:
        if self.redeemed_at:
            return "redeemed"
        return "expired" if self.is_expired() else "pending"


class ResourceServer(models.Model):
    """A resource server (an MCP server, a separate API) allowed to introspect keys.

    Operators issue its credentials in admin; only a hash of the secret is kept.
    """

    name = models.CharField(max_length=100)
    client_id = models.CharField(max_length=64, unique=True, editable=False)
    secret_hash = models.CharField(max_length=64, editable=False)
    # The RFC 8707 resources this server serves (OAUTH_RESOURCES entries, or URLs
    # below one): introspection tells it only about keys whose grants name one.
    resources = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.client_id})"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None

    def serves(self, resource: str) -> bool:
        """Whether `resource` (as a grant records it) is this server's, or below one of its URLs."""
        return protocol.resource_allowed(resource, self.resources)


class DeviceAuthorization(models.Model):
    """A device's request for a key (RFC 8628), pending until a person enters its user code and decides.

    Only hashes of the device code and the user code are stored. Once
    approved it names the grant and key; the key is handed out once.
    """

    device_code_hash = models.CharField(max_length=64, unique=True, editable=False)
    # Not unique: two live codes never share one (code_start checks), old ones may.
    user_code_hash = models.CharField(max_length=64, db_index=True, editable=False)
    client_id = models.CharField(max_length=255, help_text="What the device calls itself (nothing verifies it).")
    scope = models.CharField(max_length=100)
    resources = models.JSONField(default=list, blank=True)
    # Seconds the device must wait between polls; grows by 5 with each slow_down (section 3.5).
    interval = models.PositiveSmallIntegerField()
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    expires_at = models.DateTimeField(db_index=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    grant = models.ForeignKey(
        Grant, null=True, blank=True, on_delete=models.CASCADE, related_name="device_authorizations"
    )
    key = models.ForeignKey(ApiKey, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    approved_at = models.DateTimeField(null=True, blank=True)
    denied_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"device sign-in for {self.client_id} ({self.state_label})"

    def is_expired(self, now=None) -> bool:
        return (now or timezone.now()) >= self.expires_at

    @property
    def is_pending(self) -> bool:
        """Waiting for the person's decision, and still in time for it."""
        return self.approved_at is None and self.denied_at is None and not self.is_expired()

    @property
    def state_label(self) -> str:
        if self.delivered_at:
            return "key delivered"
        if self.approved_at:
            return "approved"
        if self.denied_at:
            return "denied"
        return "expired" if self.is_expired() else "pending"


class PendingConsent(models.Model):
    """An authorization request waiting on the consent page, for one person (oauthprovider.pending)."""

    rid_hash = models.CharField(max_length=64, unique=True, editable=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    params = models.JSONField()
    expires_at = models.DateTimeField(db_index=True)

    def __str__(self) -> str:
        return f"pending consent of {self.user_id} until {self.expires_at:%H:%M:%S}"


class ClientBlockQuerySet(models.QuerySet):
    def active(self) -> "ClientBlockQuerySet":
        return self.filter(unblocked_at__isnull=True)

    def covering(self, recorded: str) -> "ClientBlock | None":
        """An active block that covers the client recorded as `recorded`, or None: one indexed query.

        Every consent asks, so the statement is plain SQL (the ORM took a
        millisecond to compile the OR of the candidates); the candidates'
        patterns select, their kinds are checked here.
        """
        candidates = protocol.block_candidates(recorded)
        if not candidates:
            return None
        patterns = sorted({pattern for _, pattern in candidates})
        blocks = _active_blocks(len(patterns)).all(patterns)
        return next((block for block in blocks if (block.kind, block.pattern) in candidates), None)


@functools.cache
def _active_blocks(patterns: int) -> Select:
    """The active blocks whose pattern is one of `patterns` values."""
    table = connection.ops.quote_name(ClientBlock._meta.db_table)
    return Select(
        ClientBlock,
        f"SELECT {{fields}} FROM {table} WHERE unblocked_at IS NULL"
        f" AND pattern IN ({', '.join(['%s'] * patterns)}) ORDER BY id",
    )


class ClientBlock(models.Model):
    """An operator's kill switch for one client, or every client under a domain (oauthprovider.blocks).

    While active, consents for the client are refused and its authorization
    requests get our error page. Blocking revokes every grant of the client
    and every key created for it (the sweep); unblocking revives nothing.
    """

    class Kind(models.TextChoices):
        HOST = protocol.BLOCK_HOST, "Hostname (and metadata documents on that host)"
        DOMAIN = protocol.BLOCK_DOMAIN, "Domain with all its subdomains (and their metadata documents)"
        DOCUMENT = protocol.BLOCK_DOCUMENT, "Client metadata document URL"
        NAME = protocol.BLOCK_NAME, "Name an app on people's computers gives itself (not verified)"

    kind = models.CharField(max_length=16, choices=Kind.choices)
    pattern = models.CharField(max_length=255, help_text="As grants record clients (hostnames in IDNA A-labels).")
    reason = models.TextField(max_length=500, help_text="Shown to the people affected and on the refusal page.")
    # The people's own keys that they chose for this client on the consent page: the client holds them.
    revoke_chosen_keys = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    unblocked_at = models.DateTimeField(null=True, blank=True)
    unblocked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # The sweep (revoking what was handed out) runs in batches; done when this is set.
    swept_at = models.DateTimeField(null=True, blank=True)
    grants_revoked = models.PositiveIntegerField(default=0)
    keys_revoked = models.PositiveIntegerField(default=0)

    objects = ClientBlockQuerySet.as_manager()

    class Meta:
        verbose_name = "blocked client"
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["kind", "pattern"],
                condition=models.Q(unblocked_at__isnull=True),
                name="one_active_block_per_pattern",
            )
        ]
        indexes = [models.Index(fields=["pattern"])]

    def __str__(self) -> str:
        return f"block of {self.pattern} ({self.kind})"

    @property
    def is_active(self) -> bool:
        return self.unblocked_at is None
