"""No value in a limit field makes the keys page, the limits page or the consent page answer 500."""

from urllib.parse import urlencode

import pytest

from accounts.audit import SYSTEM
from accounts.services import key_create
from tests.conftest import authorize_params, authorize_url, consent_request_id, new_pkce_pair
from tests.oauthprovider.test_robustness import NASTY_ENCODED, assert_handled

FIELDS = ["expiry", "expiry_date", "allowed_networks"]
FORM = "application/x-www-form-urlencoded"


def body(field: str, encoded: str, **base: str) -> str:
    """A form body with `field` set to an already percent-encoded value (the expiry "On a date…" otherwise)."""
    others = urlencode({"expiry": "date", **{k: v for k, v in base.items() if k != field}})
    return f"{others}&{field}={encoded}"


@pytest.mark.parametrize("value", NASTY_ENCODED.values(), ids=NASTY_ENCODED.keys())
@pytest.mark.parametrize("name", FIELDS)
def test_the_keys_page_survives_any_limit(alice_client, name, value):
    assert_handled(alice_client.post("/keys/new/", body(name, value, name="x"), content_type=FORM))


@pytest.mark.parametrize("value", NASTY_ENCODED.values(), ids=NASTY_ENCODED.keys())
@pytest.mark.parametrize("name", FIELDS)
def test_the_limits_page_survives_any_limit(alice, alice_client, name, value):
    key, _ = key_create(user=alice, name="laptop", context=SYSTEM)
    assert_handled(alice_client.post(f"/keys/{key.pk}/limits/", body(name, value), content_type=FORM))


@pytest.mark.parametrize("value", NASTY_ENCODED.values(), ids=NASTY_ENCODED.keys())
@pytest.mark.parametrize("name", FIELDS)
def test_the_consent_page_survives_any_limit(alice_client, name, value):
    page = alice_client.get(authorize_url(authorize_params(new_pkce_pair())))
    data = body(name, value, request=consent_request_id(page), decision="allow", key="new")
    assert_handled(alice_client.post("/getKeys/authorize", data, content_type=FORM))
