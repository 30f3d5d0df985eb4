"""/activity/: the audit log seen from the person's side, newest first, as sentences."""

from accounts.activity import EVENTS_SHOWN
from accounts.audit import SYSTEM, RequestContext, audit_record
from accounts.models import AuditEvent
from accounts.services import key_create
from oauthprovider.models import Grant
from oauthprovider.services import grant_revoke
from tests.conftest import approve, authorize_params, new_pkce_pair


def items(html: str) -> list[str]:
    return [chunk.split("</li>", 1)[0] for chunk in html.split('<li data-kind="')[1:]]


def test_it_lists_what_happened_newest_first_in_sentences(alice, alice_client):
    approve(alice_client, authorize_params(new_pkce_pair()))
    grant_revoke(grant=Grant.objects.get(), by=Grant.RevokedBy.ADMIN, context=SYSTEM)
    html = alice_client.get("/activity/").content.decode()
    listed = items(html)
    assert listed[0].startswith("grant_revoked")
    assert 'An administrator disconnected <span class="client-host">yourapp.com</span> and 1 key revoked' in listed[0]
    assert any('You allowed <span class="client-host">yourapp.com</span> to get a new key,' in i for i in listed)
    assert any("A new key “yourapp.com”" in i for i in listed)
    assert "ago" in listed[-1]
    assert not any(i.startswith("code_issued") for i in listed), "noise is left out"


def test_an_app_that_names_itself_never_looks_like_a_website(alice, alice_client):
    approve(
        alice_client,
        authorize_params(new_pkce_pair(), client_id="github.com", redirect_uri="http://127.0.0.1:8000/cb"),
    )
    html = alice_client.get("/activity/").content.decode()
    assert '“<span class="self-name">github.com</span>” (name not verified)' in html
    assert '<span class="client-host">github.com</span>' not in html


def test_an_internationalised_host_is_shown_with_its_ascii_form(alice, alice_client):
    approve(
        alice_client,
        authorize_params(new_pkce_pair(), client_id="bücher.example", redirect_uri="https://xn--bcher-kva.example/cb"),
    )
    html = alice_client.get("/activity/").content.decode()
    assert '<span class="client-host">bücher.example</span> (xn--bcher-kva.example)' in html


def test_only_events_about_the_person_are_shown(alice, bob, alice_client):
    key_create(user=bob, name="bob's secret project", context=SYSTEM)
    key_create(user=alice, name="alice's laptop", context=RequestContext(ip_address="203.0.113.9"))
    html = alice_client.get("/activity/").content.decode()
    assert "alice&#x27;s laptop" in html and "from 203.0.113.9" in html
    assert "bob" not in html.split("<main", 1)[1]


def test_the_list_is_bounded(alice, alice_client, django_assert_max_num_queries):
    for _ in range(EVENTS_SHOWN + 10):
        audit_record(kind=AuditEvent.Kind.LOGIN_FAILED, context=SYSTEM, subject=alice)
    with django_assert_max_num_queries(4):
        html = alice_client.get("/activity/").content.decode()
    assert len(items(html)) == EVENTS_SHOWN


def test_keys_appear_by_prefix_only(alice, alice_client):
    key, raw = key_create(user=alice, name="laptop", context=SYSTEM)
    html = alice_client.get("/activity/").content.decode()
    assert f"<code>{key.prefix}…</code>" in html and raw not in html


def test_it_needs_a_sign_in_and_is_linked_from_every_page(client, alice_client, db):
    assert client.get("/activity/").status_code == 302
    assert 'href="/activity/"' in alice_client.get("/keys/").content.decode()


def test_an_event_text_from_a_user_cannot_inject_markup(alice, alice_client):
    key, _ = key_create(user=alice, name="<script>alert(1)</script>", context=SYSTEM)
    html = alice_client.get("/activity/").content.decode()
    assert "<script>alert(1)</script>" not in html


def test_failed_sign_ins_to_the_account_are_shown_to_its_owner(alice, alice_client):
    audit_record(kind=AuditEvent.Kind.LOGIN_FAILED, context=RequestContext(ip_address="192.0.2.66"), subject=alice)
    html = alice_client.get("/activity/").content.decode()
    assert "A sign-in to your account failed" in html and "from 192.0.2.66" in html
