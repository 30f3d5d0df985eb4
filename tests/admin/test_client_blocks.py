"""The operator's kill switch: block an app in admin, everything it holds is revoked, its requests are refused."""

from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.core import mail
from django.core.management import call_command
from django.db import transaction
from django.test import Client
from django.urls import reverse

from accounts.audit import SYSTEM
from accounts.models import ApiKey, AuditEvent
from accounts.services import key_create
from oauthprovider.blocks import client_block, client_block_sweep
from oauthprovider.models import ClientBlock, Grant
from tests.admin.conftest import consent
from tests.conftest import (
    REDIRECT_URI,
    approve,
    authorize_params,
    authorize_url,
    consent_request_id,
    exchange,
    force_login_with_second_factor,
    issue_code,
    make_user,
    new_pkce_pair,
)
from tests.oauthprovider.test_device_flow import approve as device_approve
from tests.oauthprovider.test_device_flow import enter, poll, post_form, start

BLOCKS = reverse("admin:oauthprovider_clientblock_changelist")
ADD = reverse("admin:oauthprovider_clientblock_add")


def block_form(client, *, confirm: bool, **data):
    data = {
        "kind": "host",
        "pattern": "yourapp.com",
        "reason": "It sends keys to a stranger.",
        "revoke_chosen_keys": "on",  # ticked by default on the form
        **data,
    }
    if confirm:
        data["post"] = "yes"
    return client.post(ADD, data)


def block(operator, kind="host", pattern="yourapp.com", **kwargs) -> ClientBlock:
    made = client_block(
        kind=kind, pattern=pattern, reason=kwargs.pop("reason", "Malicious."), actor=operator, context=SYSTEM, **kwargs
    )
    client_block_sweep(block=made)
    return made


def signed_in(user) -> Client:
    return force_login_with_second_factor(Client(), user)


# --- The admin pages --------------------------------------------------------------------------


def test_the_block_form_explains_what_each_kind_covers(operator_client):
    page = operator_client.get(ADD).content.decode()
    assert "Domain</strong>: the domain, every subdomain" in page
    assert "nothing verifies the name" in page
    assert 'name="reason"' in page and 'name="revoke_chosen_keys"' in page


def allow(client, client_id: str = "yourapp.com", key: str = "new") -> None:
    redirect_uri = f"https://{client_id}/callback"
    approve(client, authorize_params(new_pkce_pair(), client_id=client_id, redirect_uri=redirect_uri), key=key)


def test_blocking_asks_for_confirmation_first_and_says_what_will_be_revoked(operator_client, alice_client, bob):
    allow(alice_client)
    allow(signed_in(bob))
    allow(alice_client, client_id="other.example")
    response = block_form(operator_client, confirm=False)
    assert response.status_code == 200
    page = response.content.decode()
    assert "This revokes <strong>2</strong> active grants" in page and "<strong>2</strong> people" in page
    assert "<li>yourapp.com</li>" in page and "other.example" not in page
    assert 'name="post" value="yes"' in page
    assert not ClientBlock.objects.exists()
    assert Grant.objects.filter(revoked_at__isnull=True).count() == 3


def test_blocking_revokes_every_grant_and_key_of_the_app_and_tells_each_person(
    operator_client, operator, alice_client, alice_key, bob, transactional_db
):
    allow(alice_client)  # a new key for yourapp.com
    allow(alice_client, key=str(alice_key[0].pk))  # and then her own key
    allow(signed_in(bob))
    allow(alice_client, client_id="other.example")
    mail.outbox.clear()

    response = block_form(operator_client, confirm=True)

    block = ClientBlock.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse(
        "admin:oauthprovider_clientblock_change", args=[block.pk]
    )
    assert block.created_by == operator and block.swept_at is not None
    assert not Grant.objects.filter(client_id="yourapp.com", revoked_at__isnull=True).exists()
    assert not ApiKey.objects.active().filter(created_for_client="yourapp.com").exists()
    assert not ApiKey.objects.get(pk=alice_key[0].pk).is_active, "the app held alice's own key"
    assert Grant.objects.get(client_id="other.example").is_active
    assert block.grants_revoked == 2 and block.keys_revoked == 3
    assert Grant.objects.filter(client_id="yourapp.com", revoked_by=Grant.RevokedBy.ADMIN).count() == 2
    blocked = AuditEvent.objects.get(kind=AuditEvent.Kind.CLIENT_BLOCKED)
    assert blocked.actor == operator and blocked.client_id == "yourapp.com"
    assert blocked.detail["reason"] == "It sends keys to a stranger."
    revoked = AuditEvent.objects.filter(kind=AuditEvent.Kind.GRANT_REVOKED, client_id="yourapp.com")
    assert {e.subject.username for e in revoked} == {"alice", "bob"}
    assert all(e.actor == operator and e.actor_kind == "admin" for e in revoked)
    assert sorted(m.to[0] for m in mail.outbox) == ["alice@example.com", "bob@example.com"]
    assert all("The reason given: It sends keys to a stranger." in m.body for m in mail.outbox)


def test_people_keep_their_own_keys_when_the_operator_says_so(operator, alice_client, alice_key):
    consent(alice_client, key=str(alice_key[0].pk))
    block(operator, revoke_chosen_keys=False)
    assert not Grant.objects.get().is_active
    assert ApiKey.objects.get(pk=alice_key[0].pk).is_active


def test_a_chosen_key_of_an_already_disconnected_app_is_revoked_by_the_block(operator, alice, alice_client, alice_key):
    from oauthprovider.services import grant_revoke

    consent(alice_client, key=str(alice_key[0].pk))
    grant_revoke(grant=Grant.objects.get(), by=Grant.RevokedBy.USER, context=SYSTEM, actor=alice)
    assert ApiKey.objects.get(pk=alice_key[0].pk).is_active
    block(operator)
    assert not ApiKey.objects.get(pk=alice_key[0].pk).is_active, "the app still held it"


def test_a_domain_block_covers_subdomains_and_their_metadata_documents(operator, alice):
    for client_id in ("evil.example", "app.evil.example", "https://cdn.evil.example/client.json", "good.example"):
        key, _ = key_create(user=alice, name=client_id, context=SYSTEM, created_for_client=client_id)
        Grant.objects.create(user=alice, client_id=client_id, scope="key:read", key=key, key_created_by_consent=True)
    key_create(user=alice, name="local", context=SYSTEM, created_for_client="unverified:evil.example")
    block(operator, kind="domain", pattern="evil.example")
    assert list(Grant.objects.filter(revoked_at__isnull=True).values_list("client_id", flat=True)) == ["good.example"]
    assert sorted(ApiKey.objects.active().values_list("name", flat=True)) == ["good.example", "local"]


def test_a_block_of_a_name_covers_apps_calling_themselves_so_only(operator, alice, alice_client):
    consent(alice_client, client_id="github.com")
    self_named = make_grant_for_self_named(alice, "github.com")
    block(operator, kind="name", pattern="unverified:github.com")
    assert Grant.objects.get(client_id="github.com").is_active
    assert not Grant.objects.get(pk=self_named.pk).is_active


def make_grant_for_self_named(user, name: str) -> Grant:
    client = signed_in(user)
    client.get(authorize_url(authorize_params(new_pkce_pair(), client_id=name, redirect_uri="http://127.0.0.1:9/cb")))
    page = client.get(
        authorize_url(authorize_params(new_pkce_pair(), client_id=name, redirect_uri="http://127.0.0.1:9/cb"))
    )
    client.post("/getKeys/authorize", {"request": consent_request_id(page), "decision": "allow", "key": "new"})
    return Grant.objects.get(client_id=f"unverified:{name}")


def test_unusable_input_is_a_form_error_never_a_500(operator_client):
    for data in (
        {"pattern": "https://yourapp.com/"},
        {"pattern": "localhost"},
        {"kind": "domain", "pattern": "com"},
        {"kind": "document", "pattern": "not a url"},
        {"kind": "everything"},
        {"pattern": "x" * 300},
        {"reason": ""},
        {"pattern": "\x00evil.example"},
    ):
        response = block_form(operator_client, confirm=True, **data)
        assert response.status_code == 200, data
        assert "errorlist" in response.content.decode(), data
    assert not ClientBlock.objects.exists()


def test_an_app_cannot_be_blocked_twice_at_once(operator_client, operator):
    block(operator)
    response = block_form(operator_client, confirm=True)
    assert "This client is already blocked." in response.content.decode()
    assert ClientBlock.objects.count() == 1


def test_the_grant_page_links_to_the_block_form_filled_in(operator_client, grant_with_new_key):
    page = operator_client.get(reverse("admin:oauthprovider_grant_change", args=[grant_with_new_key.pk]))
    assert f'href="{ADD}?kind=host&amp;pattern=yourapp.com"' in page.content.decode()
    form = operator_client.get(f"{ADD}?kind=host&pattern=yourapp.com").content.decode()
    assert 'value="yourapp.com"' in form


def test_blocks_are_listed_and_never_edited_or_deleted(operator_client, operator):
    made = block(operator, kind="domain", pattern="evil.example")
    listing = operator_client.get(BLOCKS).content.decode()
    assert "evil.example and all its subdomains" in listing and "Blocked" in listing
    change = reverse("admin:oauthprovider_clientblock_change", args=[made.pk])
    assert operator_client.get(change).status_code == 200
    assert operator_client.post(change, {"reason": "changed", "_save": "Save"}).status_code == 403
    delete = reverse("admin:oauthprovider_clientblock_delete", args=[made.pk])
    assert operator_client.post(delete, {"post": "yes"}).status_code == 403
    assert ClientBlock.objects.get().reason == "Malicious."


def test_a_staff_member_without_permission_can_neither_block_nor_unblock(operator, db):
    from django.contrib.auth.models import Permission

    made = block(operator)
    viewer = make_user("viewer")
    viewer.is_staff = True
    viewer.save()
    viewer.user_permissions.add(Permission.objects.get(codename="view_clientblock"))
    client = signed_in(viewer)
    assert client.get(ADD).status_code == 403
    assert block_form(client, confirm=True, pattern="other.example").status_code == 403
    client.post(BLOCKS, {"action": "unblock", ACTION_CHECKBOX_NAME: [made.pk], "post": "yes"})
    assert ClientBlock.objects.get().is_active


# --- Unblocking ---------------------------------------------------------------------------------


def test_unblocking_asks_first_then_allows_new_consents_and_revives_nothing(
    operator_client, operator, alice_client, transactional_db
):
    consent(alice_client)
    made = block(operator)
    revoked_key = Grant.objects.get().key
    data = {"action": "unblock", ACTION_CHECKBOX_NAME: [str(made.pk)], "index": "0"}
    confirm = operator_client.post(BLOCKS, data)
    assert confirm.status_code == 200 and "Nothing revoked comes back" in confirm.content.decode()
    assert ClientBlock.objects.get().is_active

    data.pop("index")
    operator_client.post(BLOCKS, {**data, "post": "yes"})
    made.refresh_from_db()
    assert not made.is_active and made.unblocked_by == operator
    assert AuditEvent.objects.filter(kind=AuditEvent.Kind.CLIENT_UNBLOCKED, actor=operator).exists()
    assert not Grant.objects.get().is_active and not ApiKey.objects.get(pk=revoked_key.pk).is_active

    consent(alice_client)  # allowed again, from scratch
    assert Grant.objects.get().is_active and Grant.objects.get().key != revoked_key


# --- The app's requests -------------------------------------------------------------------------


def test_a_blocked_apps_authorization_request_gets_our_page_naming_the_block(operator, alice_client, client):
    block(operator, reason="Sends keys to a stranger.")
    for user_client in (alice_client, client):  # signed in or not
        response = user_client.get(authorize_url(authorize_params(new_pkce_pair())))
        assert response.status_code == 403
        assert "Location" not in response
        html = response.content.decode()
        assert 'data-testid="blocked"' in html and "yourapp.com" in html
        assert "Sends keys to a stranger." in html
        assert REDIRECT_URI not in html, "no way back to the app"
        assert response["Referrer-Policy"] == "no-referrer"


def test_an_open_consent_page_is_refused_once_the_app_is_blocked(operator, alice_client):
    page = alice_client.get(authorize_url(authorize_params(new_pkce_pair())))
    block(operator)
    response = alice_client.post(
        "/getKeys/authorize", {"request": consent_request_id(page), "decision": "allow", "key": "new"}
    )
    assert response.status_code == 403 and "Location" not in response
    assert not Grant.objects.exists() and not ApiKey.objects.exists()


def test_the_consent_itself_refuses_a_blocked_app_in_its_transaction(operator, alice, monkeypatch):
    """Even past the checks of the views (a block that lands between them and the consent)."""
    from oauthprovider import protocol, services
    from oauthprovider.protocol import Client as OAuthClient

    block(operator)
    client = OAuthClient(client_id="yourapp.com", host="yourapp.com")
    try:
        # Services make no savepoints of their own: a caller that goes on after one failed wraps it.
        with transaction.atomic():
            services.grant_authorize(
                user=alice, client=client, scope="key:read", resources=(), key=None, context=SYSTEM, detail={}
            )
    except services.ClientBlocked as refused:
        assert refused.error == "unauthorized_client" and refused.block.pattern == "yourapp.com"
    else:
        raise AssertionError("the consent went through")
    assert not Grant.objects.exists() and not ApiKey.objects.exists()
    assert protocol.block_covers("host", "yourapp.com", client.recorded)


def test_a_code_issued_before_the_block_is_an_invalid_grant(operator, alice_client):
    pkce = new_pkce_pair()
    code = issue_code(alice_client, pkce)
    block(operator)
    response = exchange(Client(), code, pkce)
    assert response.status_code == 400 and response.json()["error"] == "invalid_grant"


def test_a_device_approved_before_the_block_gets_no_key(operator, alice_client):
    started = start(client_id="evil-cli")
    device_approve(alice_client, started)
    block(operator, kind="name", pattern="unverified:evil-cli")
    response = poll(started, client_id="evil-cli")
    assert response.status_code == 400 and response.json()["error"] == "invalid_grant"


def test_a_blocked_device_name_cannot_start_nor_be_entered(operator, alice_client):
    started = start(client_id="evil-cli")
    block(operator, kind="name", pattern="unverified:evil-cli")
    refused = post_form("/getKeys/device/code", {"client_id": "evil-cli", "scope": "key:read"})
    assert refused.status_code == 400 and refused.json()["error"] == "unauthorized_client"
    page = enter(alice_client, started["user_code"])
    assert page.status_code == 403 and 'data-testid="blocked"' in page.content.decode()
    assert '“<span class="self-name">evil-cli</span>”' in page.content.decode()


def test_a_document_client_on_a_blocked_host_is_refused(operator, alice_client, monkeypatch):
    from oauthprovider.protocol import Client as OAuthClient
    from oauthprovider.views import authorize

    url = "https://evil.example/oauth/client.json"
    document_client = OAuthClient(
        client_id=url,
        host="evil.example",
        name="Totally Legit",
        redirect_uris=("https://evil.example/cb",),
        is_metadata_document=True,
    )
    monkeypatch.setattr(authorize, "resolve_metadata_client", lambda raw, requester=None: document_client)
    block(operator, kind="host", pattern="evil.example")
    params = authorize_params(new_pkce_pair(), client_id=url, redirect_uri="https://evil.example/cb")
    response = alice_client.get(authorize_url(params))
    assert response.status_code == 403 and "evil.example" in response.content.decode()


# --- The sweep in batches -----------------------------------------------------------------------


def many_grants(count: int, client_id: str = "yourapp.com") -> None:
    for i in range(count):
        user = make_user(f"user{i:03d}")
        key, _ = key_create(user=user, name=client_id, context=SYSTEM, created_for_client=client_id)
        Grant.objects.create(user=user, client_id=client_id, scope="key:read", key=key, key_created_by_consent=True)


def test_the_admin_revokes_the_first_batch_and_leaves_the_rest_to_the_background(
    operator_client, settings, transactional_db
):
    settings.MAINTENANCE_BATCH_SIZE = 3
    settings.BACKGROUND_TASKS = "cron"  # nothing runs after the request: the command finishes
    many_grants(8)
    response = block_form(operator_client, confirm=True)
    made = ClientBlock.objects.get()
    assert made.grants_revoked == 3 and made.swept_at is None
    assert Grant.objects.filter(revoked_at__isnull=True).count() == 5
    assert "the rest follows in the background" in str(list(response.wsgi_request._messages)[0])

    call_command("sweep_client_blocks", verbosity=0)
    made.refresh_from_db()
    assert made.grants_revoked == 8 and made.keys_revoked == 8 and made.swept_at is not None
    assert not Grant.objects.filter(revoked_at__isnull=True).exists()
    call_command("send_notifications", verbosity=0)
    assert len(mail.outbox) == 8, "each person told once"


def test_with_background_work_the_whole_sweep_finishes_after_the_request(operator_client, settings, transactional_db):
    settings.MAINTENANCE_BATCH_SIZE = 3
    settings.BACKGROUND_TASKS = "inline"
    many_grants(8)
    block_form(operator_client, confirm=True)
    made = ClientBlock.objects.get()
    assert made.grants_revoked == 8 and made.swept_at is not None


def test_a_sweep_stops_when_the_block_is_lifted(operator, settings):
    from oauthprovider.blocks import client_unblock

    many_grants(6)
    made = client_block(kind="host", pattern="yourapp.com", reason="x", actor=operator, context=SYSTEM)
    assert client_block_sweep(block=made, batch_size=2, max_batches=1) is False
    client_unblock(block=made, actor=operator, context=SYSTEM)
    client_block_sweep(block=made, batch_size=2)
    assert Grant.objects.filter(revoked_at__isnull=True).count() == 4


def test_running_the_sweep_twice_revokes_and_tells_once(operator, settings, transactional_db):
    many_grants(4)
    made = client_block(kind="host", pattern="yourapp.com", reason="x", actor=operator, context=SYSTEM)
    client_block_sweep(block=made, batch_size=3)
    client_block_sweep(block=made, batch_size=3)
    call_command("sweep_client_blocks", verbosity=0)
    made.refresh_from_db()
    assert made.grants_revoked == 4
    assert AuditEvent.objects.filter(kind=AuditEvent.Kind.GRANT_REVOKED).count() == 4
    assert len(mail.outbox) == 4


def test_the_confirmation_page_carries_what_was_typed_to_the_block(operator_client):
    import re

    data = {"kind": "domain", "pattern": "Bücher.example", "reason": "Phishing <b>kit</b>", "revoke_chosen_keys": ""}
    page = block_form(operator_client, confirm=False, **data).content.decode()
    assert "bücher.example" in page and "(domain with all its subdomains" in page.lower()
    assert "Phishing &lt;b&gt;kit&lt;/b&gt;" in page
    form = page.split('<form method="post">', 1)[1].split("</form>", 1)[0]
    posted = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', form))
    assert "revoke_chosen_keys" not in posted
    operator_client.post(ADD, {k: v.replace("&lt;", "<").replace("&gt;", ">") for k, v in posted.items()})
    made = ClientBlock.objects.get()
    assert (made.kind, made.pattern, made.reason) == ("domain", "xn--bcher-kva.example", "Phishing <b>kit</b>")
    assert made.revoke_chosen_keys is False


def test_the_blocks_list_costs_the_same_at_3_and_30_rows(operator_client, operator):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def count() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert operator_client.get(BLOCKS).status_code == 200
        return len(captured.captured_queries)

    def blocks(start: int, stop: int) -> None:
        for i in range(start, stop):
            made = client_block(kind="host", pattern=f"app{i}.example", reason="x", actor=operator, context=SYSTEM)
            if i % 2:
                ClientBlock.objects.filter(pk=made.pk).update(unblocked_at=made.created_at, unblocked_by=operator)

    blocks(0, 3)
    count()
    few = count()
    blocks(3, 30)
    assert count() == few


def test_the_sweep_command_sends_the_notices_itself_and_leaves_no_work_behind(
    operator, settings, transactional_db, monkeypatch
):
    from accounts import background

    settings.BACKGROUND_TASKS = "thread"
    many_grants(3)
    client_block(kind="host", pattern="yourapp.com", reason="x", actor=operator, context=SYSTEM)
    queued = []
    monkeypatch.setattr(background, "_ensure_worker", lambda: None)
    monkeypatch.setattr(background, "_queue", type("Queue", (), {"put": lambda self, task: queued.append(task)})())
    call_command("sweep_client_blocks", verbosity=0)
    assert queued == [], "nothing was left to a thread that dies with the command"
    assert len(mail.outbox) == 3
