"""Writes on users' API keys. Each one records its audit event in the same transaction."""

from django.db import transaction
from django.utils import timezone

from accounts import keys
from accounts.audit import RequestContext, audit_record
from accounts.limits import NO_LIMITS, KeyLimits
from accounts.models import ApiKey, AuditEvent, User


def key_create(
    *,
    user: User,
    name: str,
    context: RequestContext,
    created_for_client: str = "",
    actor_kind: str = AuditEvent.Actor.USER,
    limits: KeyLimits = NO_LIMITS,
) -> tuple[ApiKey, str]:
    """Create a key with the limits its owner chose; the plaintext is returned once, to hand to the user or the app."""
    raw = keys.generate_raw_key()
    with transaction.atomic(savepoint=False):  # nested in a consent's transaction: no SAVEPOINT
        key = ApiKey.objects.create(
            user=user,
            name=name[:100],
            prefix=keys.visible_prefix(raw),
            key_hash=keys.hash_key(raw),
            key_encrypted=keys.encrypt_key(raw),
            created_for_client=created_for_client,
            expires_at=limits.expires_at,
            allowed_networks=list(limits.allowed_networks),
        )
        audit_record(
            kind=AuditEvent.Kind.KEY_CREATED,
            context=context,
            actor_kind=actor_kind,
            actor=user,
            subject=user,
            client_id=created_for_client,
            key_prefix=key.prefix,
            detail={"name": key.name, **(limits.as_detail if limits != NO_LIMITS else {})},
        )
    return key, raw


def key_revoke(
    *,
    key: ApiKey,
    context: RequestContext,
    actor_kind: str = AuditEvent.Actor.USER,
    actor: User | None = None,
    reason: str = "",
) -> bool:
    """Revoke at once; returns False if it was already revoked."""
    now = timezone.now()
    with transaction.atomic():
        revoked = ApiKey.objects.filter(pk=key.pk, revoked_at__isnull=True).update(revoked_at=now)
        if revoked:
            key.revoked_at = now
            audit_record(
                kind=AuditEvent.Kind.KEY_REVOKED,
                context=context,
                actor_kind=actor_kind,
                actor=actor,
                subject_id=key.user_id,
                client_id=key.created_for_client,
                key_prefix=key.prefix,
                detail={"name": key.name, **({"reason": reason} if reason else {})},
            )
    return bool(revoked)


def key_touch(*, key: ApiKey) -> None:
    """Record use coarsely: at most one write per key per resolution window."""
    now = timezone.now()
    if key.last_used_is_stale(now):
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
        key.last_used_at = now


def key_rename(*, key: ApiKey, name: str, context: RequestContext, actor: User) -> None:
    """Rename a key (names are labels for people; the key itself is unchanged)."""
    old_name = key.name
    with transaction.atomic():
        ApiKey.objects.filter(pk=key.pk).update(name=name[:100])
        key.name = name[:100]
        audit_record(
            kind=AuditEvent.Kind.KEY_RENAMED,
            context=context,
            actor=actor,
            subject_id=key.user_id,
            client_id=key.created_for_client,
            key_prefix=key.prefix,
            detail={"old_name": old_name, "name": key.name},
        )


def key_limits_change(*, key: ApiKey, limits: KeyLimits, context: RequestContext, actor: User) -> bool:
    """Change when a key expires and where it works; False (nothing written) if it is revoked or expired.

    A key nearing its expiry may be extended by its owner; an expired key
    stays expired (like a revoked one): whoever held it was refused from that
    moment, and reviving it would hand them access again without a word.
    """
    now = timezone.now()
    old = key.limits
    with transaction.atomic():
        changed = (
            ApiKey.objects.usable(now)
            .filter(pk=key.pk)
            .update(expires_at=limits.expires_at, allowed_networks=list(limits.allowed_networks))
        )
        if changed:
            key.expires_at, key.allowed_networks = limits.expires_at, list(limits.allowed_networks)
            audit_record(
                kind=AuditEvent.Kind.KEY_LIMITS_CHANGED,
                context=context,
                actor=actor,
                subject_id=key.user_id,
                client_id=key.created_for_client,
                key_prefix=key.prefix,
                detail={"name": key.name, "old": old.as_detail, "new": limits.as_detail},
            )
    return bool(changed)
