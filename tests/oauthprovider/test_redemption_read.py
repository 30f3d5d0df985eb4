"""The token exchange's read of a code: on PostgreSQL a function (migration 0010), elsewhere the join.

Both must read the same thing in every state the redemption distinguishes;
the HTTP tests of the exchange (test_token.py) run whichever this database uses.
"""

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from accounts.models import ApiKey
from oauthprovider.models import REDEMPTION_EXTRA, REDEMPTION_FIELDS, AuthorizationCode, Grant, _redemption
from oauthprovider.protocol import hash_secret
from tests.conftest import issue_code, new_pkce_pair


def read(code: str, *, by_function: bool, now):
    found = _redemption(by_function=by_function).first([connection.ops.adapt_datetimefield_value(now), code])
    if found is None:
        return None
    attnames = [AuthorizationCode._meta.get_field(name).attname for name in REDEMPTION_FIELDS]
    return {name: getattr(found, name) for name in [*attnames, *REDEMPTION_EXTRA]}


@pytest.fixture
def code_hash(alice_client) -> str:
    return hash_secret(issue_code(alice_client, new_pkce_pair()))


def test_the_read_loads_no_more_than_the_redemption_uses(code_hash, django_assert_num_queries):
    with django_assert_num_queries(1):
        code = AuthorizationCode.objects.for_redemption(code_hash, now=timezone.now())
    assert code.get_deferred_fields() == {"code_hash", "key_created_by_consent", "created_at", "failed_attempts"}
    assert (code.key_active, code.key_unexpired, code.grant_active) == (True, True, True)
    assert code.grant_client_id == code.client_id and code.key_prefix and code.key_ciphertext


def test_an_unknown_code_reads_nothing(db):
    assert AuthorizationCode.objects.for_redemption(hash_secret("no-such-code"), now=timezone.now()) is None


def _revoke_key(code: AuthorizationCode) -> None:
    ApiKey.objects.filter(pk=code.key_id).update(revoked_at=timezone.now())


def _expire_key(code: AuthorizationCode) -> None:
    ApiKey.objects.filter(pk=code.key_id).update(expires_at=timezone.now() - timedelta(seconds=1))


def _revoke_grant(code: AuthorizationCode) -> None:
    Grant.objects.filter(pk=code.grant_id).update(revoked_at=timezone.now())


def _redeem(code: AuthorizationCode) -> None:
    AuthorizationCode.objects.filter(pk=code.pk).update(redeemed_at=timezone.now())


@pytest.mark.postgres
@pytest.mark.parametrize("change", [None, _revoke_key, _expire_key, _revoke_grant, _redeem])
def test_on_postgresql_the_function_reads_what_the_join_reads(code_hash, change):
    if connection.vendor != "postgresql":
        pytest.skip("the function exists on PostgreSQL only; other databases run the join")
    if change:
        change(AuthorizationCode.objects.get(code_hash=code_hash))
    now = timezone.now()
    by_join = read(code_hash, by_function=False, now=now)
    assert by_join is not None
    assert read(code_hash, by_function=True, now=now) == by_join
    assert read(hash_secret("no-such-code"), by_function=True, now=now) is None
