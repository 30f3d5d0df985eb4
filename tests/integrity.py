"""What the rows themselves must say after any fault: nothing half-written (issue #15 items 5 and 6).

Each consent writes its key, grant, code and audit events in one
transaction, and each redemption its claim and event in another; after an
outage, a killed instance or a race, every row must still have its
partners. Run on any DB-API cursor (Django's, or psycopg's on a private
cluster). PostgreSQL SQL.
"""

CHECKS = {
    "redeemed codes without a token_issued event": """
        SELECT c.id FROM oauthprovider_authorizationcode c JOIN accounts_apikey k ON k.id = c.key_id
        WHERE c.redeemed_at IS NOT NULL AND NOT EXISTS (
            SELECT 1 FROM accounts_auditevent e
            WHERE e.kind = 'token_issued' AND e.subject_id = c.user_id AND e.key_prefix = k.prefix)""",
    "token_issued events without a redeemed code": """
        SELECT e.id FROM accounts_auditevent e
        WHERE e.kind = 'token_issued' AND NOT EXISTS (
            SELECT 1 FROM oauthprovider_authorizationcode c JOIN accounts_apikey k ON k.id = c.key_id
            WHERE c.redeemed_at IS NOT NULL AND c.user_id = e.subject_id AND k.prefix = e.key_prefix)""",
    "codes without a code_issued event": """
        SELECT c.id FROM oauthprovider_authorizationcode c JOIN accounts_apikey k ON k.id = c.key_id
        WHERE NOT EXISTS (
            SELECT 1 FROM accounts_auditevent e
            WHERE e.kind = 'code_issued' AND e.subject_id = c.user_id AND e.key_prefix = k.prefix)""",
    "grants without a consent_granted event": """
        SELECT g.id FROM oauthprovider_grant g
        WHERE NOT EXISTS (
            SELECT 1 FROM accounts_auditevent e
            WHERE e.kind = 'consent_granted' AND e.subject_id = g.user_id AND e.client_id = g.client_id)""",
    "consent_granted events without a grant": """
        SELECT e.id FROM accounts_auditevent e
        WHERE e.kind = 'consent_granted' AND NOT EXISTS (
            SELECT 1 FROM oauthprovider_grant g WHERE g.user_id = e.subject_id AND g.client_id = e.client_id)""",
    "keys created for an app without the consent that created them": """
        SELECT k.id FROM accounts_apikey k
        WHERE k.created_for_client <> '' AND NOT EXISTS (
            SELECT 1 FROM accounts_auditevent e
            WHERE e.kind = 'consent_granted' AND e.subject_id = k.user_id AND e.key_prefix = k.prefix)""",
    "keys created for an app without a key_created event": """
        SELECT k.id FROM accounts_apikey k
        WHERE k.created_for_client <> '' AND NOT EXISTS (
            SELECT 1 FROM accounts_auditevent e
            WHERE e.kind = 'key_created' AND e.subject_id = k.user_id AND e.key_prefix = k.prefix)""",
    "keys created for an app without a grant": """
        SELECT k.id FROM accounts_apikey k
        WHERE k.created_for_client <> '' AND NOT EXISTS (
            SELECT 1 FROM oauthprovider_grant g WHERE g.user_id = k.user_id AND g.client_id = k.created_for_client)""",
    "keys created by a consent without a code or a device sign-in to hand them out": """
        SELECT k.id FROM accounts_apikey k
        WHERE k.created_for_client <> ''
          AND NOT EXISTS (SELECT 1 FROM oauthprovider_authorizationcode c WHERE c.key_id = k.id)
          AND NOT EXISTS (SELECT 1 FROM oauthprovider_deviceauthorization d WHERE d.key_id = k.id)""",
}


def broken_rows(cursor) -> dict[str, list]:
    """{what is wrong: [row ids]} for every check that finds something; {} when the rows are whole."""
    found = {}
    for what, sql in CHECKS.items():
        cursor.execute(sql)
        rows = cursor.fetchall()
        if rows:
            found[what] = [row[0] for row in rows]
    return found


def counts(cursor) -> dict[str, int]:
    """How much there was to check (a check of empty tables proves nothing)."""
    cursor.execute(
        "SELECT (SELECT count(*) FROM oauthprovider_authorizationcode WHERE redeemed_at IS NOT NULL), "
        "(SELECT count(*) FROM oauthprovider_grant), (SELECT count(*) FROM accounts_apikey)"
    )
    redeemed, grants, keys = cursor.fetchone()
    return {"redeemed codes": redeemed, "grants": grants, "keys": keys}
