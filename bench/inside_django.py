"""The benchmark's Django-side steps, run by bench/run.py in a subprocess.

    python bench/inside_django.py seed  OUT.json --users N --keys-per-user K --codes C --issuer URL
    python bench/inside_django.py probe IN.json OUT.json

`seed` fills an empty, migrated database and writes the secrets the load
generator needs (raw keys, codes with their verifiers, logins) to OUT.json,
which lives in the benchmark's temporary directory and is deleted with it.
`probe` counts the SQL queries of single requests in-process (Django's test
client and CaptureQueriesContext, production settings) and asks the database
how it finds a key (EXPLAIN). Settings come from the environment bench/run.py
sets, exactly as for the gunicorn it starts.
"""

import argparse
import json
import secrets
import sys
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import django  # noqa: E402

PASSWORD = "bench-" + "correct-horse-battery-staple"
CODE_TTL_SECONDS = 3600  # seeded codes must outlive seeding and the earlier scenarios
PROBE_FEW_KEYS, PROBE_MANY_KEYS = 1, 40
TRANSACTION_CONTROL = {"BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE"}


def _setup() -> None:
    import os

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    django.setup()


def seed(args: argparse.Namespace) -> None:
    _setup()
    from django.conf import settings
    from django.contrib.auth.hashers import make_password
    from django.db import transaction

    from accounts import keys
    from accounts.audit import SYSTEM
    from accounts.models import ApiKey, User
    from oauthprovider import protocol
    from oauthprovider.services import consent_approve

    # The pending codes are issued here, minutes before the exchange runs.
    settings.OAUTH_CODE_TTL_SECONDS = CODE_TTL_SECONDS
    password_hash = make_password(PASSWORD)  # one slow hash, shared by every user

    users = User.objects.bulk_create(
        [
            User(username=f"bench{i:05d}", email=f"bench{i:05d}@example.com", password=password_hash)
            for i in range(args.users)
        ],
        batch_size=1000,
    )
    if users[0].pk is None:  # backends without RETURNING ids
        users = list(User.objects.filter(username__startswith="bench").order_by("username"))

    def key_rows(user, count: int, label: str) -> tuple[list, list[str]]:
        # The fields key_create writes, without an audit event per row.
        rows, raws = [], []
        for n in range(count):
            raw = keys.generate_raw_key()
            raws.append(raw)
            rows.append(
                ApiKey(
                    user=user,
                    name=f"{label} {n}",
                    prefix=keys.visible_prefix(raw),
                    key_hash=keys.hash_key(raw),
                    key_encrypted=keys.encrypt_key(raw),
                )
            )
        return rows, raws

    raw_keys: list[str] = []
    rows: list = []
    for user in users:
        user_rows, user_raws = key_rows(user, args.keys_per_user, "key")
        rows += user_rows
        raw_keys += user_raws
        if len(rows) >= 2000:
            ApiKey.objects.bulk_create(rows)
            rows = []
    ApiKey.objects.bulk_create(rows)

    # Two users for the probe's N+1 check on the consent page.
    probe_users = {}
    for name, count in (("probe-few", PROBE_FEW_KEYS), ("probe-many", PROBE_MANY_KEYS)):
        user = User.objects.create(username=name, password=password_hash)
        ApiKey.objects.bulk_create(key_rows(user, count, name)[0])
        probe_users[name] = user.pk

    # Pending codes, issued the way the consent page's Allow issues them
    # (a new key for the app each time), spread over users and client hosts.
    codes = []
    clients = [f"app{n}.example.com" for n in range(50)]
    with transaction.atomic():
        for i in range(args.codes):
            client_id = clients[i % len(clients)]
            redirect_uri = f"https://{client_id}/callback"
            verifier = secrets.token_urlsafe(48)
            auth_request = protocol.parse_authorization_request(
                {
                    "client_id": [client_id],
                    "redirect_uri": [redirect_uri],
                    "response_type": ["code"],
                    "code_challenge": [protocol.s256_challenge(verifier)],
                    "code_challenge_method": ["S256"],
                    "state": [f"s{i}"],
                },
                allow_loopback=True,
                allowed_resources=[args.issuer],
            )
            code = consent_approve(
                user=users[(i * 7) % len(users)], auth_request=auth_request, key_choice="new", context=SYSTEM
            )
            codes.append({"code": code, "client_id": client_id, "redirect_uri": redirect_uri, "verifier": verifier})

    Path(args.out).write_text(
        json.dumps(
            {
                "password": PASSWORD,
                "usernames": [u.username for u in users],
                "keys": raw_keys,
                "codes": codes,
                "probe_users": probe_users,
            }
        )
    )


def probe(args: argparse.Namespace) -> None:
    """Query counts of single requests, and the plan of the key lookup."""
    _setup()
    from django.conf import settings
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from accounts import keys
    from accounts.models import ApiKey, User

    data = json.loads(Path(args.seed).read_text())
    host = settings.ALLOWED_HOSTS[0]
    client = Client(SERVER_NAME=host, HTTP_HOST=host)
    result: dict = {}

    def count(method: str, path: str, expect: int, label: str, **kwargs) -> int:
        """Data statements of one request; transaction control is reported beside them."""
        with CaptureQueriesContext(connection) as ctx:
            response = getattr(client, method)(path, **kwargs)
        if response.status_code != expect:
            raise SystemExit(f"probe: {method.upper()} {path} answered {response.status_code}, expected {expect}")
        statements = [" ".join(q["sql"].split()) for q in ctx.captured_queries]
        control = [s for s in statements if s.split(" ", 1)[0].upper() in TRANSACTION_CONTROL]
        # The statements' beginnings only (no parameters), for the report.
        result.setdefault("statements", {})[label] = [s[:70] for s in statements]
        result.setdefault("transaction_control", {})[label] = len(control)
        return len(statements) - len(control)

    fresh_key = data["probe_key"]  # reserved by run.py: never used by the load
    result["me_first_call"] = count("get", "/v1/me", 200, "me_first_call", HTTP_X_API_KEY=fresh_key)
    result["me_next_call"] = count("get", "/v1/me", 200, "me_next_call", HTTP_X_API_KEY=fresh_key)
    result["me_unknown_key"] = count("get", "/v1/me", 401, "me_unknown_key", HTTP_X_API_KEY=keys.generate_raw_key())

    code = data["probe_code"]
    result["token_exchange"] = count(
        "post",
        "/getKeys/token",
        200,
        "token_exchange",
        data=urlencode(
            {
                "grant_type": "authorization_code",
                "code": code["code"],
                "client_id": code["client_id"],
                "redirect_uri": code["redirect_uri"],
                "code_verifier": code["verifier"],
            }
        ),
        content_type="application/x-www-form-urlencoded",
    )

    for name in ("probe-few", "probe-many"):
        user = User.objects.get(pk=data["probe_users"][name])
        client.force_login(user)
        result[f"consent_page_{name}"] = count("get", data["consent_path"], 200, f"consent_page_{name}")
        result[f"consent_page_{name}_keys"] = ApiKey.objects.active().filter(user=user).count()
        client.logout()

    lookup = ApiKey.objects.active().select_related("user").filter(key_hash=keys.hash_key(fresh_key))
    plan = lookup.explain()
    result["key_lookup_plan"] = plan
    table = ApiKey._meta.db_table
    result["key_lookup_uses_index"] = (
        "Index Scan" in plan or "USING INDEX" in plan or "USING COVERING INDEX" in plan
    ) and not (f"Seq Scan on {table}" in plan or f"SCAN {table}" in plan.replace("SCAN TABLE", "SCAN"))
    Path(args.out).write_text(json.dumps(result))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("seed")
    s.add_argument("out")
    s.add_argument("--users", type=int, required=True)
    s.add_argument("--keys-per-user", type=int, required=True)
    s.add_argument("--codes", type=int, required=True)
    s.add_argument("--issuer", required=True)
    p = sub.add_parser("probe")
    p.add_argument("seed")
    p.add_argument("out")
    args = parser.parse_args()
    {"seed": seed, "probe": probe}[args.command](args)


if __name__ == "__main__":
    main()
