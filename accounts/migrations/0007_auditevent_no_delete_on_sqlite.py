"""SQLite refuses DELETE on accounts_auditevent too (PostgreSQL has since 0003).

0003 left DELETE open on SQLite because the test runner empties tables with
DELETE between tests; the tests now drop this trigger around that flush
(tests/conftest.py), so the service's database refuses it like PostgreSQL
does. SQLite drops triggers when Django rebuilds a table: a test checks
that both are still in place after every migration.
"""

from django.db import migrations

SQLITE_CREATE = """
CREATE TRIGGER accounts_auditevent_no_delete
    BEFORE DELETE ON accounts_auditevent
BEGIN
    SELECT RAISE(ABORT, 'audit events are append-only');
END;
"""
SQLITE_DROP = "DROP TRIGGER IF EXISTS accounts_auditevent_no_delete;"


def create_trigger(apps, schema_editor) -> None:
    if schema_editor.connection.vendor == "sqlite":
        schema_editor.execute(SQLITE_CREATE, params=None)


def drop_trigger(apps, schema_editor) -> None:
    if schema_editor.connection.vendor == "sqlite":
        schema_editor.execute(SQLITE_DROP, params=None)


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0006_audit_resource_server_changed_kind"),
    ]

    operations = [
        migrations.RunPython(create_trigger, drop_trigger, elidable=False),
    ]
