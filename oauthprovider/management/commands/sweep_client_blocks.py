"""Finish the sweep of every active client block (revoke its grants and keys), in batches.

The admin sweeps the first batch at once and the rest in the background;
this command finishes what a restarted or crashed process left behind.
Safe to run at any time, from cron, on several instances at once.
"""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from accounts import background
from accounts.notifications import notifications_send_due
from oauthprovider.blocks import client_block_sweep
from oauthprovider.models import ClientBlock


class Command(BaseCommand):
    help = "Revoke what active client blocks cover and was not revoked yet (grants, keys), in batches."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--batch-size",
            type=int,
            default=None,
            help="Grants per transaction (default: MAINTENANCE_BATCH_SIZE).",
        )

    def handle(self, *args, batch_size, verbosity, **options) -> None:
        batch_size = settings.MAINTENANCE_BATCH_SIZE if batch_size is None else batch_size
        if batch_size < 1:
            raise CommandError("--batch-size must be >= 1.")
        with background.held():  # the notices are sent below, before this process exits
            for block in ClientBlock.objects.active().filter(swept_at__isnull=True).order_by("pk"):
                client_block_sweep(block=block, batch_size=batch_size)
                if verbosity:
                    self.stdout.write(
                        f"Block of {block.pattern} ({block.kind}): {block.grants_revoked} grants and "
                        f"{block.keys_revoked} keys revoked in all."
                    )
        notifications_send_due(batch_size=batch_size)
