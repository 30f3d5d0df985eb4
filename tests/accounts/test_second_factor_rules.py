"""The rules of second factors as pure functions (accounts/second_factor.py), without a database."""

import pytest

from accounts import second_factor as rules

# RFC 6238 Appendix B: the SHA-1 secret "12345678901234567890" (base32 below) and its 8-digit values;
# six digits are the last six of those.
RFC_SECRET = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
RFC_VECTORS = [(59, "94287082"), (1111111109, "07081804"), (1234567890, "89005924"), (2000000000, "69279037")]


@pytest.mark.parametrize("now, eight_digits", RFC_VECTORS)
def test_codes_match_the_rfc_6238_test_vectors(now, eight_digits):
    assert rules.totp_code_at(RFC_SECRET, now) == eight_digits[-6:]
    assert rules.totp_check(secret=RFC_SECRET, code=eight_digits[-6:], now=now).accepted


def test_a_code_one_step_old_or_early_is_accepted_two_steps_are_not():
    now = 1_000_000_000.0
    for offset, accepted in [(-60, False), (-30, True), (0, True), (30, True), (60, False)]:
        code = rules.totp_code_at(RFC_SECRET, now + offset)
        assert rules.totp_check(secret=RFC_SECRET, code=code, now=now).accepted is accepted, offset


def test_a_step_already_used_or_older_is_a_replay():
    now = 1_000_000_000.0
    step = rules.totp_step(now)
    code = rules.totp_code_at(RFC_SECRET, now)
    assert rules.totp_check(secret=RFC_SECRET, code=code, now=now, last_used_step=step - 1).step == step
    replay = rules.totp_check(secret=RFC_SECRET, code=code, now=now, last_used_step=step)
    assert not replay.accepted and replay.replayed
    older = rules.totp_code_at(RFC_SECRET, now - 30)
    assert rules.totp_check(secret=RFC_SECRET, code=older, now=now, last_used_step=step).replayed


@pytest.mark.parametrize("text", ["12345", "1234567", "12a456", "١٢٣٤٥٦", "", "12 34 5", "123\n456x"])
def test_only_six_ascii_digits_are_a_code(text):
    assert rules.normalise_totp_code(text) is None


def test_spaces_inside_a_code_are_ignored():
    assert rules.normalise_totp_code(" 123 456 ") == "123456"


def test_a_new_secret_carries_160_bits():
    secret = rules.totp_new_secret()
    assert len(secret) == 32 and set(secret) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")
    assert secret != rules.totp_new_secret()


def test_the_otpauth_uri_names_the_issuer_and_the_account_and_the_qr_code_is_an_svg():
    uri = rules.totp_uri(secret=RFC_SECRET, account="alice@keys.example.com", issuer="Keygrant")
    assert uri.startswith("otpauth://totp/Keygrant:alice%40keys.example.com?secret=" + RFC_SECRET)
    assert "issuer=Keygrant" in uri
    svg = rules.qr_svg(uri)
    assert svg.startswith("<svg") and "<script" not in svg and "href" not in svg


def test_recovery_codes_are_random_readable_and_about_79_bits():
    codes = rules.recovery_codes_new()
    assert len(codes) == 10 and len(set(codes)) == 10
    for code in codes:
        assert len(code) == 19 and code.count("-") == 3
        assert set(code.replace("-", "")) <= set(rules.RECOVERY_ALPHABET)
    assert len(rules.RECOVERY_ALPHABET) ** rules.RECOVERY_CODE_LENGTH > 2**79


def test_recovery_codes_are_typed_in_any_case_with_or_without_dashes():
    assert rules.normalise_recovery_code("ABCD-EFGH jkmn-pqrs") == "abcdefghjkmnpqrs"
    assert rules.normalise_recovery_code("abcd-efgh-jkmn-pqr") is None
    assert rules.normalise_recovery_code("abcd-efgh-jkmn-pqr0") is None  # 0 is not in the alphabet
    assert rules.recovery_code_hash("abcdefghjkmnpqrs") != "abcdefghjkmnpqrs"


def test_one_field_tells_codes_apart_by_shape():
    assert rules.code_kind("123 456") == "totp"
    assert rules.code_kind("abcd-efgh-jkmn-pqrs") == "recovery"
    assert rules.code_kind("hunter2") is None


@pytest.mark.parametrize(
    "policy, is_staff, is_superuser, required",
    [
        ("none", True, True, False),
        ("staff", False, False, False),
        ("staff", True, False, True),
        ("staff", False, True, True),
        ("all", False, False, True),
    ],
)
def test_who_must_have_a_second_factor(policy, is_staff, is_superuser, required):
    assert rules.second_factor_required(policy=policy, is_staff=is_staff, is_superuser=is_superuser) is required


def test_a_recheck_is_due_when_the_last_check_is_older_than_the_setting_or_unknown_or_in_the_future():
    assert not rules.reauth_due(last_check=1000, now=1900, max_age=900)
    assert rules.reauth_due(last_check=1000, now=1901, max_age=900)
    assert rules.reauth_due(last_check=None, now=1000, max_age=900)
    assert rules.reauth_due(last_check=2000, now=1000, max_age=900)


def test_the_relying_party_is_the_issuer_s_host_and_origin():
    rp = rules.relying_party("https://Keys.Example.com")
    assert (rp.id, rp.origin, rp.passkeys_possible) == ("keys.example.com", "https://keys.example.com", True)
    local = rules.relying_party("http://localhost:8000")
    assert (local.id, local.origin, local.passkeys_possible) == ("localhost", "http://localhost:8000", True)
    assert not rules.relying_party("http://127.0.0.1:8000").passkeys_possible
    assert not rules.relying_party("http://[::1]:8000").passkeys_possible
