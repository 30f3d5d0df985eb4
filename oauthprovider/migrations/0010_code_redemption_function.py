"""The token exchange's read of a code, with its key and grant, as a PL/pgSQL function on PostgreSQL.

PostgreSQL parses and plans every statement a client sends; a three-table
join costs it more to plan than to run (docs/benchmarks.md). PL/pgSQL keeps
the plans of the statements inside a function for the life of the
connection, so called as a function the join is planned once per
connection. Unlike a prepared statement it needs nothing of the driver or of
a pooler such as PgBouncer in transaction mode. Other databases run the join
itself (oauthprovider.models._redemption); the result columns are the same.
"""

from django.db import migrations

POSTGRES_CREATE = """
CREATE FUNCTION oauthprovider_code_for_redemption(at timestamptz, wanted_hash varchar)
RETURNS TABLE (
    id bigint, user_id bigint, grant_id bigint, key_id bigint,
    client_id varchar, redirect_uri text, scope varchar, code_challenge varchar,
    resources jsonb, expires_at timestamptz, redeemed_at timestamptz,
    key_prefix varchar, key_ciphertext text, key_active boolean, key_unexpired boolean,
    grant_client_id varchar, grant_active boolean
)
LANGUAGE plpgsql STABLE AS $$
-- The result columns share the tables' column names: read columns, not those variables.
#variable_conflict use_column
BEGIN
    RETURN QUERY
    SELECT c.id, c.user_id, c.grant_id, c.key_id,
           c.client_id, c.redirect_uri, c.scope, c.code_challenge,
           c.resources, c.expires_at, c.redeemed_at,
           k.prefix, k.key_encrypted, k.revoked_at IS NULL, k.expires_at IS NULL OR k.expires_at > at,
           g.client_id, g.revoked_at IS NULL
    FROM oauthprovider_authorizationcode c
    JOIN accounts_apikey k ON k.id = c.key_id
    JOIN oauthprovider_grant g ON g.id = c.grant_id
    WHERE c.code_hash = wanted_hash;
END
$$;
"""
POSTGRES_DROP = "DROP FUNCTION IF EXISTS oauthprovider_code_for_redemption(timestamptz, varchar);"


def create_function(apps, schema_editor) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(POSTGRES_CREATE, params=None)


def drop_function(apps, schema_editor) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(POSTGRES_DROP, params=None)


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0012_audit_actor_subject_single_indexes_dropped"),
        ("oauthprovider", "0009_code_redeemed_at_unindexed"),
    ]

    operations = [
        migrations.RunPython(create_function, drop_function, elidable=False),
    ]
