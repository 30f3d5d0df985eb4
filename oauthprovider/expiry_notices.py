"""The notice a week before a key that an app holds expires (docs/accounts.md "Notices").

Queued by `manage.py send_notifications` (cron), once per key and expiry:
extending the key and letting the new date come near sends a new one.
Keys that lived a week or less from the start are left alone: whoever chose
that knew.
"""

from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from accounts.clients import ClientName
from accounts.models import ApiKey, Notification
from accounts.notifications import link, notification_queue
from oauthprovider.models import Grant


def _holders(key: ApiKey) -> list[ClientName]:
    """The apps holding `key`: the one it was created for, and those whose active grant names it."""
    recorded = {key.created_for_client: ""} if key.created_for_client else {}
    for client_id, client_name in Grant.objects.filter(key=key, revoked_at__isnull=True).values_list(
        "client_id", "client_name"
    ):
        recorded.setdefault(client_id, client_name)
    return [ClientName.of(client_id, declared_name=name) for client_id, name in recorded.items()]


def dedupe_key(key: ApiKey) -> str:
    return f"key-expiring:{key.pk}:{int(key.expires_at.timestamp())}"


def expiry_notices_queue(*, now: datetime | None = None, batch_size: int | None = None) -> int:
    """Queue the notice for every key an app holds that expires within KEY_EXPIRY_NOTICE_DAYS; returns how many."""
    now = now or timezone.now()
    window = timedelta(days=settings.KEY_EXPIRY_NOTICE_DAYS)
    held = Exists(Grant.objects.filter(key=OuterRef("pk"), revoked_at__isnull=True))
    keys = (
        ApiKey.objects.active()
        .filter(expires_at__gt=now, expires_at__lte=now + window)
        .filter(~Q(created_for_client="") | held)
        .select_related("user")
        .order_by("pk")
    )
    queued, after = 0, 0
    limit = batch_size or settings.MAINTENANCE_BATCH_SIZE
    while True:
        batch = list(keys.filter(pk__gt=after)[:limit])
        for key in batch:
            if (
                key.expires_at - key.created_at <= window
                or Notification.objects.filter(dedupe_key=dedupe_key(key)).exists()
            ):
                continue
            queued += _queue(key, now=now) is not None
        if len(batch) < limit:
            return queued
        after = batch[-1].pk


def _queue(key: ApiKey, *, now: datetime) -> Notification | None:
    return notification_queue(
        user=key.user,
        kind=Notification.Kind.KEY_EXPIRING,
        template="oauthprovider/email/key_expiring",
        context={
            "key": key,
            "holders": _holders(key),
            "now": now,
            "limits_url": link("accounts:key_limits", key.pk),
            "keys_url": link("accounts:keys"),
            "apps_url": link("oauth:apps"),
        },
        dedupe_key=dedupe_key(key),
        deliver=False,
    )
