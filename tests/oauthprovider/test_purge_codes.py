"""purge_codes deletes exactly the codes past their retention, and never a pending one."""

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from oauthprovider.models import AuthorizationCode, Grant


@pytest.fixture
def make_code(alice, alice_key):
    grant = Grant.objects.create(user=alice, client_id="yourapp.com", scope="key:read", key=alice_key[0])
    counter = iter(range(10_000))

    def make(*, expired_ago: timedelta | None = None, redeemed: bool = False, expires_in: timedelta | None = None):
        now = timezone.now()
        expires_at = now - expired_ago if expired_ago is not None else now + (expires_in or timedelta(seconds=60))
        return AuthorizationCode.objects.create(
            code_hash=f"{next(counter):064d}",
            user=alice,
            grant=grant,
            key=alice_key[0],
            client_id="yourapp.com",
            redirect_uri="https://yourapp.com/callback",
            scope="key:read",
            code_challenge="x" * 43,
            created_at=expires_at - timedelta(seconds=60),
            expires_at=expires_at,
            redeemed_at=expires_at - timedelta(seconds=30) if redeemed else None,
        )

    return make


def run(*args: str) -> str:
    out = StringIO()
    call_command("purge_codes", *args, stdout=out)
    return out.getvalue()


def test_it_deletes_old_expired_and_old_redeemed_codes_only(make_code, settings):
    settings.OAUTH_CODE_RETENTION_DAYS = 7
    old_unused = make_code(expired_ago=timedelta(days=8))
    old_redeemed = make_code(expired_ago=timedelta(days=8), redeemed=True)
    recent_unused = make_code(expired_ago=timedelta(days=6))
    recent_redeemed = make_code(expired_ago=timedelta(hours=1), redeemed=True)
    pending = make_code(expires_in=timedelta(seconds=30))
    output = run()
    remaining = set(AuthorizationCode.objects.values_list("pk", flat=True))
    assert remaining == {recent_unused.pk, recent_redeemed.pk, pending.pk}
    assert old_unused.pk not in remaining and old_redeemed.pk not in remaining
    assert "Deleted 2 codes" in output


def test_a_zero_retention_still_keeps_pending_codes(make_code):
    pending = make_code(expires_in=timedelta(seconds=30))
    redeemed_pending = make_code(expires_in=timedelta(seconds=30), redeemed=True)
    expired = make_code(expired_ago=timedelta(seconds=1))
    run("--retention-days", "0")
    assert set(AuthorizationCode.objects.values_list("pk", flat=True)) == {pending.pk, redeemed_pending.pk}
    assert not AuthorizationCode.objects.filter(pk=expired.pk).exists()


def test_it_deletes_in_batches(make_code):
    for _ in range(7):
        make_code(expired_ago=timedelta(days=30))
    keep = make_code(expired_ago=timedelta(days=1))
    output = run("--batch-size", "3", "--verbosity", "2")
    assert "Deleted 7 codes" in output and "in 3 batches" in output
    assert list(AuthorizationCode.objects.values_list("pk", flat=True)) == [keep.pk]


def test_the_batch_size_setting_is_the_default(make_code, settings):
    settings.MAINTENANCE_BATCH_SIZE = 2
    for _ in range(3):
        make_code(expired_ago=timedelta(days=30))
    assert "in 2 batches" in run()


def test_a_dry_run_counts_and_deletes_nothing(make_code):
    make_code(expired_ago=timedelta(days=30))
    make_code(expired_ago=timedelta(days=30), redeemed=True)
    make_code()
    output = run("--dry-run")
    assert "Would delete 2 codes" in output and "1 redeemed, 1 never used" in output
    assert AuthorizationCode.objects.count() == 3


def test_a_replay_of_a_purged_code_is_only_invalid_grant(client, alice_client, pkce_pair):
    """The trade-off of a short retention: a replay after the purge revokes nothing."""
    from tests.conftest import exchange, issue_code

    code = issue_code(alice_client, pkce_pair)
    assert exchange(client, code, pkce_pair).status_code == 200
    AuthorizationCode.objects.update(expires_at=timezone.now() - timedelta(days=30))
    run()
    response = exchange(client, code, pkce_pair)
    assert response.status_code == 400 and response.json()["error"] == "invalid_grant"
    assert Grant.objects.get().is_active


def test_bad_arguments_are_refused(db):
    with pytest.raises(CommandError):
        run("--batch-size", "0")
    with pytest.raises(CommandError):
        run("--retention-days", "-1")


def test_it_deletes_expired_unanswered_consent_requests_and_device_sign_ins(alice, alice_client, pkce_pair):
    from datetime import timedelta

    from django.utils import timezone

    from oauthprovider.models import DeviceAuthorization, PendingConsent
    from tests.conftest import authorize_params, authorize_url

    alice_client.get(authorize_url(authorize_params(pkce_pair)))
    alice_client.get(authorize_url(authorize_params(pkce_pair)))
    PendingConsent.objects.filter(pk=PendingConsent.objects.first().pk).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    old = timezone.now() - timedelta(days=30)
    for index, expires_at in enumerate([old, timezone.now() + timedelta(minutes=5)]):
        DeviceAuthorization.objects.create(
            device_code_hash=f"{index:064d}",
            user_code_hash="x",
            client_id="localhost",
            scope="key:read",
            interval=5,
            expires_at=expires_at,
        )

    output = run()

    assert PendingConsent.objects.count() == 1, "the live one stays"
    assert DeviceAuthorization.objects.get().expires_at > timezone.now(), "the live one stays"
    assert "Deleted 1 device sign-ins" in output and "Deleted 1 expired unanswered consent requests" in output
