"""Queue the notices of keys about to expire, send every notice that is due, forget old ones.

Safe to run from cron on several instances at once: notices are claimed
before they are sent (accounts.notifications), so none is sent twice, and
an expiry notice exists once per key and expiry.
"""

from datetime import timedelta

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from accounts.notifications import notifications_purge, notifications_send_due
from oauthprovider.expiry_notices import expiry_notices_queue


class Command(BaseCommand):
    help = (
        "Queue the notices for keys apps hold that expire within KEY_EXPIRY_NOTICE_DAYS, send all due "
        "notices (retrying failed ones whose time has come), and delete notices older than "
        "NOTIFICATION_RETENTION_DAYS. Run it every few minutes."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--batch-size",
            type=int,
            default=None,
            help="Notices claimed and keys read per batch (default: MAINTENANCE_BATCH_SIZE).",
        )

    def handle(self, *args, batch_size, verbosity, **options) -> None:
        batch_size = settings.MAINTENANCE_BATCH_SIZE if batch_size is None else batch_size
        if batch_size < 1:
            raise CommandError("--batch-size must be >= 1.")
        queued = expiry_notices_queue(batch_size=batch_size)
        sent, failed = notifications_send_due(batch_size=batch_size)
        purged = notifications_purge(older_than=timedelta(days=settings.NOTIFICATION_RETENTION_DAYS))
        if verbosity:
            self.stdout.write(
                f"Queued {queued} expiry notices; sent {sent} notices, {failed} failed (retried later); "
                f"deleted {purged} old notices."
            )
