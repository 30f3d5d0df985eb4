"""Drop the audit log's single-column actor and subject indexes: (actor, -created_at) and
(subject, -created_at) already serve every lookup, and every index costs a write per event.

Only the indexes go (the database operations); the table is not rebuilt, so on
SQLite the append-only triggers stay in place (an AlterField would remake it).
"""

from django.conf import settings
from django.db import migrations, models

_INDEXES = {
    "actor_id": "accounts_auditevent_actor_id_179eee89",
    "subject_id": "accounts_auditevent_subject_id_ba7190bf",
}


def _drop_index(column: str, name: str) -> migrations.RunSQL:
    return migrations.RunSQL(
        f"DROP INDEX IF EXISTS {name}",
        reverse_sql=f"CREATE INDEX {name} ON accounts_auditevent ({column})",
    )


def _unindexed_user_fk(related_name: str) -> models.ForeignKey:
    """The event's actor or subject field as it is now: the same foreign key, without an index of its own."""
    return models.ForeignKey(
        blank=True,
        db_index=False,
        editable=False,
        null=True,
        on_delete=models.deletion.PROTECT,
        related_name=related_name,
        to=settings.AUTH_USER_MODEL,
    )


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0011_second_factors"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[_drop_index(column, name) for column, name in _INDEXES.items()],
            state_operations=[
                migrations.AlterField(model_name="auditevent", name="actor", field=_unindexed_user_fk("+")),
                migrations.AlterField(model_name="auditevent", name="subject", field=_unindexed_user_fk("audit_events")),
            ],
        ),
    ]
