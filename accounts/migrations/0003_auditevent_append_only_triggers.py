"""Make the audit log append-only in the database too, not only in the ORM.

PostgreSQL refuses UPDATE and DELETE on accounts_auditevent (TRUNCATE, which
only a table owner can run and the test runner uses to reset tables, still
works). SQLite refuses UPDATE; a DELETE trigger there would also block the
test runner's table flush. SQLite drops triggers when Django rebuilds a
table, so tests/accounts/test_audit_log.py checks that the guard is still in
place after every migration.
"""

from django.db import migrations

POSTGRES_CREATE = """
CREATE FUNCTION accounts_auditevent_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit events are append-only' USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER accounts_auditevent_append_only
    BEFORE UPDATE OR DELETE ON accounts_auditevent
    FOR EACH ROW EXECUTE FUNCTION accounts_auditevent_append_only();
"""
POSTGRES_DROP = """
DROP TRIGGER IF EXISTS accounts_auditevent_append_only ON accounts_auditevent;
DROP FUNCTION IF EXISTS accounts_auditevent_append_only();
"""
SQLITE_CREATE = """
CREATE TRIGGER accounts_auditevent_append_only
    BEFORE UPDATE ON accounts_auditevent
BEGIN
    SELECT RAISE(ABORT, 'audit events are append-only');
END;
"""
SQLITE_DROP = "DROP TRIGGER IF EXISTS accounts_auditevent_append_only;"


def _run(schema_editor, statements: dict[str, str]) -> None:
    sql = statements.get(schema_editor.connection.vendor)
    if sql:
        schema_editor.execute(sql, params=None)


def create_triggers(apps, schema_editor) -> None:
    _run(schema_editor, {"postgresql": POSTGRES_CREATE, "sqlite": SQLITE_CREATE})


def drop_triggers(apps, schema_editor) -> None:
    _run(schema_editor, {"postgresql": POSTGRES_DROP, "sqlite": SQLITE_DROP})


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0002_audit_log_protect_and_indexes"),
    ]

    operations = [
        migrations.RunPython(create_triggers, drop_triggers, elidable=False),
    ]
