"""Authorization requests waiting on the consent page (DESIGN.md "Authorization codes").

Any number of concurrent requests in one browser session can each be
answered (tabs, an MCP client starting two flows), each exactly once, and a
consent page view writes no session. Real threads with their own database
connections, released together, sharing one signed-in session cookie.
"""

import threading

from django.conf import settings as django_settings
from django.db import connections
from django.test import Client

from accounts.models import ApiKey
from oauthprovider.models import AuthorizationCode, PendingConsent
from tests.conftest import authorize_params, authorize_url, consent_request_id, new_pkce_pair, query_of

THREADS = 8


def in_threads(work, count: int = THREADS) -> list:
    """Run work(index) in `count` threads released together; results or exceptions, in order."""
    barrier = threading.Barrier(count)
    results: list = [None] * count

    def worker(index: int) -> None:
        try:
            barrier.wait(timeout=30)
            results[index] = work(index)
        except BaseException as exc:  # noqa: BLE001 - reported by the assertions
            results[index] = exc
        finally:
            connections.close_all()

    pool = [threading.Thread(target=worker, args=(i,)) for i in range(count)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join(timeout=60)
    return results


def same_session(signed_in: Client) -> Client:
    """Another tab of the same browser: the same session cookie."""
    tab = Client()
    tab.cookies[django_settings.SESSION_COOKIE_NAME] = signed_in.cookies[django_settings.SESSION_COOKIE_NAME].value
    return tab


def test_concurrent_requests_in_one_session_can_each_be_answered(shared_database, alice_client):
    pkce_pairs = [new_pkce_pair() for _ in range(THREADS)]

    def flow(index: int) -> tuple[int, str]:
        tab = same_session(alice_client)
        page = tab.get(authorize_url(authorize_params(pkce_pairs[index], state=f"tab-{index}")))
        assert page.status_code == 200
        answer = tab.post(
            "/getKeys/authorize", {"request": consent_request_id(page), "decision": "allow", "key": "new"}
        )
        return answer.status_code, answer.get("Location", "")

    results = in_threads(flow)

    assert all(isinstance(r, tuple) for r in results), results
    assert [status for status, _ in results] == [302] * THREADS, "no approval is lost"
    states = sorted(query_of(location)["state"][0] for _, location in results)
    assert states == sorted(f"tab-{i}" for i in range(THREADS))
    assert AuthorizationCode.objects.count() == THREADS
    assert not PendingConsent.objects.exists(), "each answered request is gone"


def test_one_consent_form_posted_many_times_at_once_counts_once(shared_database, alice_client, pkce_pair):
    page = alice_client.get(authorize_url(authorize_params(pkce_pair)))
    rid = consent_request_id(page)

    def post(_: int) -> int:
        return (
            same_session(alice_client)
            .post("/getKeys/authorize", {"request": rid, "decision": "allow", "key": "new"})
            .status_code
        )

    results = in_threads(post)

    assert sorted(results) == [302] + [400] * (THREADS - 1), results
    assert AuthorizationCode.objects.count() == 1
    assert ApiKey.objects.count() == 1


def test_showing_the_consent_page_writes_no_session(alice_client, pkce_pair, django_assert_max_num_queries):
    alice_client.get(authorize_url(authorize_params(pkce_pair)))  # warm caches
    with django_assert_max_num_queries(6) as captured:
        assert alice_client.get(authorize_url(authorize_params(pkce_pair))).status_code == 200
    writes = [q["sql"] for q in captured.captured_queries if not q["sql"].lstrip().upper().startswith("SELECT")]
    assert len(writes) == 1 and "oauthprovider_pendingconsent" in writes[0], writes
    assert not any("django_session" in sql for sql in writes)


def test_a_request_is_bound_to_the_person_who_saw_it(alice_client, bob, pkce_pair):
    page = alice_client.get(authorize_url(authorize_params(pkce_pair)))
    bob_client = Client()
    bob_client.force_login(bob)
    response = bob_client.post(
        "/getKeys/authorize", {"request": consent_request_id(page), "decision": "allow", "key": "new"}
    )
    assert response.status_code == 400
    assert not AuthorizationCode.objects.exists()
    assert PendingConsent.objects.filter(user__username="alice").exists(), "alice can still answer it"


def test_only_a_hash_of_the_request_id_is_stored(alice_client, pkce_pair):
    page = alice_client.get(authorize_url(authorize_params(pkce_pair)))
    rid = consent_request_id(page)
    assert not PendingConsent.objects.filter(rid_hash=rid).exists()
    assert PendingConsent.objects.get().rid_hash != rid


# --- People with many keys (the consent page stays small) -------------------------------------


def many_keys(user, count: int, *, start: int = 0) -> list[ApiKey]:
    """`count` keys created a minute apart, the last one the newest (names "app 000"...)."""
    from datetime import timedelta

    from django.utils import timezone

    from accounts import keys as key_material

    now = timezone.now()
    rows = []
    for index in range(start, start + count):
        raw = key_material.generate_raw_key()
        rows.append(
            ApiKey(
                user=user,
                name=f"app {index:03d}",
                prefix=key_material.visible_prefix(raw),
                key_hash=key_material.hash_key(raw),
                key_encrypted="unused",
                created_for_client=f"app{index:03d}.example",
                created_at=now - timedelta(minutes=start + count - index),
            )
        )
    return ApiKey.objects.bulk_create(rows)


def test_a_person_with_500_keys_gets_a_page_of_bounded_size_and_cost(
    alice, alice_client, pkce_pair, django_assert_max_num_queries
):
    many_keys(alice, 5)
    small = alice_client.get(authorize_url(authorize_params(pkce_pair)))
    many_keys(alice, 495, start=5)
    with django_assert_max_num_queries(6):
        large = alice_client.get(authorize_url(authorize_params(pkce_pair)))
    assert large.status_code == 200
    assert large.content.count(b'name="key"') == 1 + 10  # a new key, and the ten most recent
    assert len(large.content) < len(small.content) + 4000
    assert b'data-testid="key-search"' in large.content
    assert b"app 499" in large.content and b"app 489" not in large.content, "the most recent ones"


def test_the_key_search_finds_any_key_by_name_or_prefix(alice, alice_client, pkce_pair):
    keys = many_keys(alice, 30)
    url = authorize_url(authorize_params(pkce_pair))
    by_name = alice_client.get(url + "&key_search=app+003")
    assert b"app 003" in by_name.content and by_name.content.count(b'name="key"') == 2
    by_prefix = alice_client.get(url + "&key_search=" + keys[7].prefix)
    assert f'value="{keys[7].pk}"'.encode() in by_prefix.content
    nothing = alice_client.get(url + "&key_search=nothing-like-this")
    assert b'data-testid="no-key-found"' in nothing.content


def test_a_key_found_by_search_can_be_chosen(alice, alice_client, pkce_pair):
    keys = many_keys(alice, 30)
    page = alice_client.get(authorize_url(authorize_params(pkce_pair)) + "&key_search=app+002")
    response = alice_client.post(
        "/getKeys/authorize", {"request": consent_request_id(page), "decision": "allow", "key": str(keys[2].pk)}
    )
    assert response.status_code == 302
    assert AuthorizationCode.objects.get().key == keys[2]


def test_the_previous_choice_for_the_app_comes_first_even_among_many(alice, alice_client, pkce_pair):
    keys = many_keys(alice, 40)
    first = alice_client.get(authorize_url(authorize_params(pkce_pair)))
    alice_client.post(
        "/getKeys/authorize", {"request": consent_request_id(first), "decision": "allow", "key": str(keys[0].pk)}
    )
    again = alice_client.get(authorize_url(authorize_params(new_pkce_pair()))).content.decode()
    radios = [line for line in again.splitlines() if 'name="key"' in line]
    assert f'value="{keys[0].pk}"' in radios[1] and "checked" in radios[1], "the oldest key, chosen last time"
