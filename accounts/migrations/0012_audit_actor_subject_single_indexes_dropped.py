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


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0011_second_factors"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[_drop_index(column, name) for column, name in _INDEXES.items()],
            state_operations=[
                migrations.AlterField(
                    model_name="auditevent",
                    name="actor",
                    field=models.ForeignKey(
                        blank=True,
                        db_index=False,
                        editable=False,
                        null=True,
                        on_delete=models.deletion.PROTECT,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                migrations.AlterField(
                    model_name="auditevent",
                    name="subject",
                    field=models.ForeignKey(
                        blank=True,
                        db_index=False,
                        editable=False,
                        null=True,
                        on_delete=models.deletion.PROTECT,
                        related_name="audit_events",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
        ),
    ]
