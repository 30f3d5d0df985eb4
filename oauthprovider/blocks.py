"""The operator's kill switch: block a client, revoke everything it was handed, unblock.

A block (ClientBlock) names a hostname, a domain with its subdomains, a
client metadata document URL, or a name apps give themselves
(protocol.block_candidates says what each covers). While it is active:

- consents for a covered client are refused inside their transaction
  (services.grant_authorize, after services.consents_lock), and its
  authorization requests get our page naming the block, never a redirect;
- the sweep revokes every grant of a covered client and every key created
  for it (and, unless the operator said otherwise, the person's own keys
  they chose for it: the client holds them), each through
  services.grant_revoke, so each is audited and each person is told.

The sweep runs in batches of MAINTENANCE_BATCH_SIZE grants, one short
transaction each, so it is safe while the service serves. The admin runs
the first batch in its request and leaves the rest to the background
(accounts.background) and to `manage.py sweep_client_blocks` (cron), which
finishes any sweep a dead process left behind. A batch locks the block's
row and stops once the block is lifted: unblocking revives nothing, and a
consent given after unblocking is never swept.
"""

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from accounts.audit import SYSTEM, RequestContext, audit_record
from accounts.background import run_after_commit
from accounts.clients import ClientName
from accounts.models import ApiKey, AuditEvent, User
from accounts.services import key_revoke
from oauthprovider import protocol
from oauthprovider.models import ClientBlock, Grant
from oauthprovider.services import consents_lock, grant_revoke


def client_block(
    *,
    kind: str,
    pattern: str,
    reason: str,
    actor: User,
    context: RequestContext,
    revoke_chosen_keys: bool = True,
) -> ClientBlock:
    """Record the block (pattern normalised by protocol.block_pattern). Sweep afterwards: client_block_sweep.

    The exclusive consents lock makes this wait for consents already past
    their block check, so the sweep (which starts after this commits) sees
    their grants; later consents see the block.
    """
    with transaction.atomic():
        consents_lock(exclusive=True)
        block = ClientBlock.objects.create(
            kind=kind, pattern=pattern, reason=reason, revoke_chosen_keys=revoke_chosen_keys, created_by=actor
        )
        audit_record(
            kind=AuditEvent.Kind.CLIENT_BLOCKED,
            context=context,
            actor_kind=AuditEvent.Actor.ADMIN,
            actor=actor,
            client_id=pattern,
            detail={"block": block.pk, "kind": kind, "reason": reason, "revoke_chosen_keys": revoke_chosen_keys},
        )
    return block


def client_unblock(*, block: ClientBlock, actor: User, context: RequestContext) -> bool:
    """Lift a block: new consents are allowed again; nothing revoked comes back. False if already lifted."""
    with transaction.atomic():
        lifted = ClientBlock.objects.filter(pk=block.pk, unblocked_at__isnull=True).update(
            unblocked_at=timezone.now(), unblocked_by=actor
        )
        if lifted:
            audit_record(
                kind=AuditEvent.Kind.CLIENT_UNBLOCKED,
                context=context,
                actor_kind=AuditEvent.Actor.ADMIN,
                actor=actor,
                client_id=block.pattern,
                detail={"block": block.pk, "kind": block.kind},
            )
    return bool(lifted)


def block_prefilter(field: str, *, kind: str, pattern: str) -> Q:
    """A cheap SQL superset of the clients (in `field`) a block covers; protocol.block_covers decides exactly."""
    documents = Q(**{f"{field}__istartswith": "https://"})
    match kind:
        case ClientBlock.Kind.HOST:
            return (
                Q(**{field: pattern})
                | Q(**{f"{field}__istartswith": f"https://{pattern}/"})
                | Q(**{f"{field}__istartswith": f"https://{pattern}:"})
            )
        case ClientBlock.Kind.DOMAIN:
            return (
                Q(**{field: pattern})
                | Q(**{f"{field}__endswith": "." + pattern})
                | (documents & Q(**{f"{field}__icontains": pattern}))
            )
    return Q(**{field: pattern})


def block_impact(*, kind: str, pattern: str) -> dict:
    """What a block would revoke now, for the confirmation page: grants, people, a few of the clients."""
    covered = [
        (client_id, user_id)
        for client_id, user_id in Grant.objects.filter(revoked_at__isnull=True)
        .filter(block_prefilter("client_id", kind=kind, pattern=pattern))
        .values_list("client_id", "user_id")
        .iterator()
        if protocol.block_covers(kind, pattern, client_id)
    ]
    clients = sorted({client_id for client_id, _ in covered})
    return {
        "grants": len(covered),
        "people": len({user_id for _, user_id in covered}),
        "clients": [ClientName.of(c) for c in clients[:20]],
        "more_clients": max(len(clients) - 20, 0),
    }


def _sweep_grants(block: ClientBlock, *, after: int, limit: int, context: RequestContext) -> int | None:
    """One batch, one transaction: the next `limit` grants past pk `after`; their last pk, or None when done."""
    with transaction.atomic():
        current = ClientBlock.objects.select_for_update().get(pk=block.pk)
        if not current.is_active:
            return None  # lifted: revoke nothing more
        # Active grants; with revoke_chosen_keys also revoked ones whose key still works (the client holds it).
        unfinished = Q(revoked_at__isnull=True)
        if block.revoke_chosen_keys:
            unfinished |= Q(key__isnull=False, key__revoked_at__isnull=True)
        grants = list(
            Grant.objects.select_related("key", "user")
            .filter(block_prefilter("client_id", kind=block.kind, pattern=block.pattern), unfinished, pk__gt=after)
            .order_by("pk")[:limit]
        )
        revoked_grants = revoked_keys = 0
        for grant in grants:
            if not protocol.block_covers(block.kind, block.pattern, grant.client_id):
                continue
            was_active = grant.is_active
            revoked_keys += len(
                grant_revoke(
                    grant=grant,
                    by=Grant.RevokedBy.ADMIN,
                    actor=block.created_by,
                    context=context,
                    revoke_key=block.revoke_chosen_keys,
                    reason=block.reason,
                )
            )
            revoked_grants += was_active and not grant.is_active
        ClientBlock.objects.filter(pk=block.pk).update(
            grants_revoked=F("grants_revoked") + revoked_grants, keys_revoked=F("keys_revoked") + revoked_keys
        )
    return grants[-1].pk if len(grants) == limit else None


def _sweep_keys(block: ClientBlock, *, after: int, limit: int, context: RequestContext) -> int | None:
    """Keys created for a covered client that no grant revoked (none, unless something went wrong before)."""
    with transaction.atomic():
        if not ClientBlock.objects.select_for_update().get(pk=block.pk).is_active:
            return None
        keys = list(
            ApiKey.objects.active()
            .exclude(created_for_client="")
            .filter(block_prefilter("created_for_client", kind=block.kind, pattern=block.pattern), pk__gt=after)
            .order_by("pk")[:limit]
        )
        revoked = sum(
            key_revoke(
                key=key,
                context=context,
                actor_kind=AuditEvent.Actor.ADMIN,
                actor=block.created_by,
                reason="app blocked by an administrator",
            )
            for key in keys
            if protocol.block_covers(block.kind, block.pattern, key.created_for_client)
        )
        ClientBlock.objects.filter(pk=block.pk).update(keys_revoked=F("keys_revoked") + revoked)
    return keys[-1].pk if len(keys) == limit else None


def client_block_sweep(
    *,
    block: ClientBlock,
    context: RequestContext = SYSTEM,
    batch_size: int | None = None,
    max_batches: int | None = None,
) -> bool:
    """Revoke what the block covers, batch by batch; True once everything is done (or the block was lifted).

    Safe to run twice at once and to interrupt: every revocation is a
    conditional update that counts (and notifies) once.
    """
    limit = batch_size or settings.MAINTENANCE_BATCH_SIZE
    batches = 0
    for sweep in (_sweep_grants, _sweep_keys):
        after: int | None = 0
        while True:
            after = sweep(block, after=after, limit=limit, context=context)
            batches += 1
            if after is None:
                break
            if max_batches is not None and batches >= max_batches:
                return False  # more to do: client_block_sweep_later, or the command
    ClientBlock.objects.filter(pk=block.pk, swept_at__isnull=True).update(swept_at=timezone.now())
    block.refresh_from_db()
    return True


def client_block_sweep_later(block: ClientBlock) -> None:
    """Finish the sweep in the background (accounts.background); `sweep_client_blocks` is the safety net."""
    block_id = block.pk

    def finish() -> None:
        client_block_sweep(block=ClientBlock.objects.get(pk=block_id))

    run_after_commit(finish)
