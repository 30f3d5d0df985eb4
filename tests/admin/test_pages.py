"""Every admin list and change page renders for an operator, with its filters and search."""

import pytest
from django.urls import reverse

from accounts.models import ApiKey, AuditEvent
from oauthprovider.models import AuthorizationCode, Grant
from tests.admin.conftest import consent, populate

CHANGELISTS = [
    "accounts_user",
    "accounts_apikey",
    "accounts_auditevent",
    "oauthprovider_grant",
    "oauthprovider_authorizationcode",
]


def changelist(name: str, query: str = "") -> str:
    return reverse(f"admin:{name}_changelist") + (f"?{query}" if query else "")


def rows_shown(response) -> int:
    return response.content.count(b'class="action-select"') or response.content.count(b"<tr")


@pytest.mark.parametrize("name", CHANGELISTS)
def test_every_changelist_renders(operator_client, grant_with_new_key, name):
    populate(3)
    response = operator_client.get(changelist(name))
    assert response.status_code == 200


def test_every_change_page_renders(operator_client, grant_with_new_key, alice):
    populate(2)
    code = AuthorizationCode.objects.filter(grant=grant_with_new_key).get()
    objects = {
        "accounts_user": alice,
        "accounts_apikey": grant_with_new_key.key,
        "accounts_auditevent": AuditEvent.objects.filter(subject=alice).first(),
        "oauthprovider_grant": grant_with_new_key,
        "oauthprovider_authorizationcode": code,
    }
    for name, obj in objects.items():
        response = operator_client.get(reverse(f"admin:{name}_change", args=[obj.pk]))
        assert response.status_code == 200, name


def test_the_grant_list_shows_user_client_key_dates_and_status(operator_client, grant_with_new_key):
    grant_with_new_key.revoked_at = grant_with_new_key.last_authorized_at
    grant_with_new_key.revoked_by = Grant.RevokedBy.REPLAY
    grant_with_new_key.save()
    page = operator_client.get(changelist("oauthprovider_grant")).content.decode()
    assert "alice" in page
    assert "yourapp.com" in page
    assert grant_with_new_key.key.masked in page
    assert "Revoked" in page and "Code replay detected" in page


def test_an_idn_client_is_shown_in_unicode_and_punycode(operator_client, alice_client):
    consent(alice_client, client_id="bücher.example")
    page = operator_client.get(changelist("oauthprovider_grant")).content.decode()
    assert "bücher.example (xn--bcher-kva.example)" in page


@pytest.mark.parametrize(
    ("query", "expected", "absent"),
    [
        ("status=active", ["user000"], ["user001"]),
        ("status=revoked", ["user001"], ["user000"]),
        ("revoked_by__exact=admin", ["user001"], ["user000"]),
        ("client=app002.example", ["user002"], ["user001", "user003"]),
        ("username=user003", ["user003"], ["user002"]),
        ("q=user004", ["user004"], ["user003"]),
        ("q=user004%40example.com", ["user004"], ["user003"]),
        ("q=app000.exam", ["user000"], ["user003"]),
    ],
)
def test_grant_filters_and_search(operator_client, query, expected, absent):
    populate(5)
    page = operator_client.get(changelist("oauthprovider_grant", query)).content.decode()
    for text in expected:
        assert text in page
    for text in absent:
        assert text not in page


def test_grant_search_finds_an_idn_host_typed_in_unicode(operator_client, alice_client):
    consent(alice_client, client_id="bücher.example")
    populate(1)
    page = operator_client.get(changelist("oauthprovider_grant", "q=bücher.example")).content.decode()
    assert "xn--bcher-kva.example" in page
    assert "user000" not in page
    page = operator_client.get(changelist("oauthprovider_grant", "client=BÜCHER.example")).content.decode()
    assert "xn--bcher-kva.example" in page and "user000" not in page


def test_grant_date_hierarchy_and_date_filter(operator_client, grant_with_new_key):
    day = grant_with_new_key.last_authorized_at
    query = f"last_authorized_at__year={day.year}&last_authorized_at__month={day.month}"
    assert "yourapp.com" in operator_client.get(changelist("oauthprovider_grant", query)).content.decode()
    query = f"last_authorized_at__year={day.year - 1}"
    assert "yourapp.com" not in operator_client.get(changelist("oauthprovider_grant", query)).content.decode()


@pytest.mark.parametrize(
    ("query", "expected", "absent"),
    [
        ("status=active", ["key 0"], []),
        ("origin=user", ["laptop"], ["key 0"]),
        ("origin=consent", ["key 0"], ["laptop"]),
        ("client=app001.example", ["key 1"], ["key 0"]),
        ("username=alice", ["laptop"], ["key 0"]),
        ("q=laptop", ["laptop"], ["key 0"]),
        ("q=alice", ["laptop"], ["key 0"]),
        ("q=app002", ["key 2"], ["key 1"]),
    ],
)
def test_key_filters_and_search(operator_client, alice_key, query, expected, absent):
    populate(3)
    page = operator_client.get(changelist("accounts_apikey", query)).content.decode()
    for text in expected:
        assert text in page
    for text in absent:
        assert f">{text}<" not in page


def test_key_search_by_prefix(operator_client, alice_key):
    populate(2)
    key = alice_key[0]
    page = operator_client.get(changelist("accounts_apikey", f"q={key.prefix}")).content.decode()
    assert "laptop" in page and "key 0" not in page


def test_revoked_keys_are_filtered_and_shown_as_revoked(operator_client, alice_key):
    from accounts.audit import SYSTEM
    from accounts.services import key_revoke

    key_revoke(key=alice_key[0], context=SYSTEM)
    page = operator_client.get(changelist("accounts_apikey", "status=revoked")).content.decode()
    assert "laptop" in page and "Revoked" in page
    assert "laptop" not in operator_client.get(changelist("accounts_apikey", "status=active")).content.decode()


@pytest.mark.parametrize(
    ("query", "expected", "absent"),
    [
        ("state=pending", ["app001.example"], ["app000.example", "app002.example"]),
        ("state=expired", ["app000.example"], ["app001.example", "app002.example"]),
        ("state=redeemed", ["app002.example"], ["app000.example", "app001.example"]),
        ("client=app001.example", ["app001.example"], ["app002.example"]),
        ("username=user002", ["app002.example"], ["app001.example"]),
        ("q=user001", ["app001.example"], ["app002.example"]),
    ],
)
def test_code_filters_and_search(operator_client, query, expected, absent):
    populate(3)  # codes: 0 expired, 1 pending, 2 redeemed
    page = operator_client.get(changelist("oauthprovider_authorizationcode", query)).content.decode()
    for text in expected:
        assert text in page
    for text in absent:
        assert text not in page


def test_the_code_list_shows_each_state(operator_client):
    populate(3)
    page = operator_client.get(changelist("oauthprovider_authorizationcode")).content.decode()
    for state in ("pending", "expired", "redeemed"):
        assert f">{state}<" in page


@pytest.mark.parametrize(
    ("query", "expected", "absent"),
    [
        ("kind__exact=grant_revoked", ["user000"], ["alice"]),
        ("kind__exact=key_created", ["alice", "user000"], []),
        ("actor_kind__exact=admin", ["user000"], ["alice"]),
        ("client=app001.example", ["user001"], ["user000", "alice"]),
        ("username=alice", ["alice"], ["user000"]),
        ("q=user001", ["user001"], ["user000"]),
        ("q=198.51.100.7", ["user000"], ["alice"]),
        ("q=app000", ["user000"], ["user001"]),
    ],
)
def test_audit_filters_and_search(operator_client, alice_key, query, expected, absent):
    populate(2)
    page = operator_client.get(changelist("accounts_auditevent", query)).content.decode()
    for text in expected:
        assert f">{text}<" in page
    for text in absent:
        assert f">{text}<" not in page


def test_audit_search_by_key_prefix(operator_client, alice_key):
    populate(1)
    page = operator_client.get(changelist("accounts_auditevent", f"q={alice_key[0].prefix}")).content.decode()
    assert ">alice<" in page and ">user000<" not in page


def test_audit_date_filter(operator_client, alice_key):
    event = AuditEvent.objects.get()
    day = event.created_at
    query = f"created_at__year={day.year}&created_at__month={day.month}&created_at__day={day.day}"
    assert ">alice<" in operator_client.get(changelist("accounts_auditevent", query)).content.decode()
    query = f"created_at__year={day.year + 1}"
    assert ">alice<" not in operator_client.get(changelist("accounts_auditevent", query)).content.decode()


def test_every_audit_kind_can_be_filtered(operator_client):
    page = operator_client.get(changelist("accounts_auditevent")).content.decode()
    for kind in ("kek_rotated", "login_throttled", "login_failed", "code_replay", "consent_denied"):
        assert f"kind__exact={kind}" in page


def test_the_key_admin_links_to_its_grants_and_events(operator_client, grant_with_new_key):
    key = grant_with_new_key.key
    page = operator_client.get(reverse("admin:accounts_apikey_change", args=[key.pk])).content.decode()
    assert f"key__id__exact={key.pk}" in page
    grants = operator_client.get(changelist("oauthprovider_grant", f"key__id__exact={key.pk}"))
    assert grants.status_code == 200 and "yourapp.com" in grants.content.decode()


def test_apikey_model_is_still_listed(operator_client, alice_key):
    assert ApiKey.objects.count() == 1
    assert "laptop" in operator_client.get(changelist("accounts_apikey")).content.decode()


def test_the_grant_page_links_to_its_codes_and_events(operator_client, alice, grant_with_new_key):
    page = operator_client.get(
        reverse("admin:oauthprovider_grant_change", args=[grant_with_new_key.pk])
    ).content.decode()
    events = f"{reverse('admin:accounts_auditevent_changelist')}?subject__id__exact={alice.pk}&client=yourapp.com"
    assert events.replace("&", "&amp;") in page
    listed = operator_client.get(events).content.decode()
    assert "Consent granted" in listed
    codes = f"{reverse('admin:oauthprovider_authorizationcode_changelist')}?grant__id__exact={grant_with_new_key.pk}"
    assert operator_client.get(codes).status_code == 200


LISTS = [
    "admin:oauthprovider_grant_changelist",
    "admin:oauthprovider_authorizationcode_changelist",
    "admin:oauthprovider_resourceserver_changelist",
    "admin:accounts_apikey_changelist",
    "admin:accounts_auditevent_changelist",
    "admin:accounts_user_changelist",
]


@pytest.mark.parametrize("query", ["client=%00", "username=a%00", "kind__exact=%00", "q=a%00b", "o=%00", "%00=1"])
@pytest.mark.parametrize("url", LISTS)
def test_a_nul_byte_in_a_list_filter_is_an_invalid_filter_not_a_crash(operator_client, url, query):
    """Issue #13 item 15: PostgreSQL refuses NUL in text; `?client=%00` answered 500."""
    response = operator_client.get(reverse(url) + "?" + query, follow=True)
    assert response.status_code == 200
