"""Delete authorization codes and device sign-ins that expired more than OAUTH_CODE_RETENTION_DAYS ago,
and consent requests nobody answered before they expired."""

import time
from datetime import timedelta

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from oauthprovider.models import AuthorizationCode, DeviceAuthorization, PendingConsent


class Command(BaseCommand):
    help = (
        "Delete used and expired authorization codes whose expiry is older than "
        "OAUTH_CODE_RETENTION_DAYS, in small batches (safe while the service is serving). "
        "Pending codes are never touched. Device sign-ins (RFC 8628) are purged by the same rule."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--retention-days",
            type=int,
            default=None,
            help="Keep codes that expired less than this many days ago (default: OAUTH_CODE_RETENTION_DAYS).",
        )
        parser.add_argument(
            "--batch-size",
            type=int,
            default=None,
            help="Codes deleted per transaction (default: MAINTENANCE_BATCH_SIZE).",
        )
        parser.add_argument(
            "--pause",
            type=float,
            default=0.0,
            help="Seconds to sleep between batches, to spread the load (default: 0).",
        )
        parser.add_argument("--dry-run", action="store_true", help="Count what would be deleted; delete nothing.")

    def handle(self, *args, retention_days, batch_size, pause, dry_run, verbosity, **options) -> None:
        retention_days = settings.OAUTH_CODE_RETENTION_DAYS if retention_days is None else retention_days
        batch_size = settings.MAINTENANCE_BATCH_SIZE if batch_size is None else batch_size
        if retention_days < 0 or batch_size < 1 or pause < 0:
            raise CommandError("--retention-days and --pause must be >= 0, --batch-size >= 1.")
        now = timezone.now()
        cutoff = now - timedelta(days=retention_days)
        # A code is redeemed before it expires, so "expired before the cutoff"
        # covers used and unused codes alike, and never a pending one.
        purgeable = AuthorizationCode.objects.filter(expires_at__lt=cutoff)
        if dry_run:
            redeemed = purgeable.filter(redeemed_at__isnull=False).count()
            total = purgeable.count()
            self.stdout.write(
                f"Would delete {total} codes that expired before {cutoff:%Y-%m-%d %H:%M:%S} UTC "
                f"({redeemed} redeemed, {total - redeemed} never used)."
            )
            return
        deleted, batches = self._purge(AuthorizationCode, cutoff, batch_size, pause, verbosity)
        self.stdout.write(
            f"Deleted {deleted} codes that expired before {cutoff:%Y-%m-%d %H:%M:%S} UTC in {batches} batches."
        )
        # A device sign-in is delivered, denied or dead once its entry deadline passed.
        deleted, batches = self._purge(DeviceAuthorization, cutoff, batch_size, pause, verbosity)
        self.stdout.write(f"Deleted {deleted} device sign-ins that expired before the same time in {batches} batches.")
        # A consent page left unanswered: useless once expired, nothing to keep.
        deleted, batches = self._purge(PendingConsent, now, batch_size, pause, verbosity)
        self.stdout.write(f"Deleted {deleted} expired unanswered consent requests in {batches} batches.")

    def _purge(self, model, cutoff, batch_size: int, pause: float, verbosity: int) -> tuple[int, int]:
        purgeable = model.objects.filter(expires_at__lt=cutoff)
        deleted = batches = 0
        while True:
            ids = list(purgeable.order_by("expires_at").values_list("pk", flat=True)[:batch_size])
            if not ids:
                break
            # One short transaction per batch: no lock is held between batches.
            with transaction.atomic():
                count, _ = model.objects.filter(pk__in=ids, expires_at__lt=cutoff).delete()
            deleted += count
            batches += 1
            if verbosity >= 2:
                self.stdout.write(f"  batch {batches}: deleted {count}")
            if len(ids) < batch_size:
                break
            if pause:
                time.sleep(pause)
        return deleted, batches
