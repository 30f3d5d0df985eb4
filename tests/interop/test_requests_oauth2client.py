"""requests-oauth2client, a published OAuth 2 client, runs the device flow (RFC 8628) against Keygrant.

It reads Keygrant's metadata (RFC 8414, the issuer checked), asks for a
device code as a public client (client_id in the form, no secret), and its
DeviceAuthorizationPollingJob polls the token endpoint, sleeping the interval
first and backing off on slow_down. `testing=True` only lifts the library's
https-only rule for endpoint URLs: the live server is http on loopback.
"""

import pytest
import requests
from requests_oauth2client import DeviceAuthorizationPollingJob, OAuth2Client
from requests_oauth2client.exceptions import AccessDenied

from oauthprovider.models import DeviceAuthorization, Grant

pytestmark = pytest.mark.interop

CLIENT_ID = "requests-oauth2client-tool"
TIMEOUT = 10


@pytest.fixture
def metadata(keygrant) -> dict:
    return requests.get(f"{keygrant}/.well-known/oauth-authorization-server", timeout=TIMEOUT).json()


@pytest.fixture
def client(keygrant, metadata, settings) -> OAuth2Client:
    settings.OAUTH_DEVICE_POLL_INTERVAL_SECONDS = 1  # seconds per test, not tens (read per request)
    return OAuth2Client.from_discovery_endpoint(
        f"{keygrant}/.well-known/oauth-authorization-server",
        issuer=keygrant,
        client_id=CLIENT_ID,
        testing=True,
        # Version 1.8 takes every endpoint from the discovery document except
        # this one, which it leaves to the caller: the same document's value.
        device_authorization_endpoint=metadata["device_authorization_endpoint"],
    )


def test_the_metadata_offers_the_device_flow(metadata, keygrant):
    assert metadata["device_authorization_endpoint"] == f"{keygrant}/getKeys/device/code"
    assert "urn:ietf:params:oauth:grant-type:device_code" in metadata["grant_types_supported"]


def test_the_library_gets_a_key_through_the_device_flow_and_uses_it(client, keygrant, person):
    started = client.authorize_device(scope="key:read")
    assert started.verification_uri == f"{keygrant}/getKeys/device"
    assert started.interval == 1 and not started.is_expired()
    job = DeviceAuthorizationPollingJob(client, started)

    assert job() is None, "pending until the person acts"
    person.approve_device(complete_uri=started.verification_uri_complete)
    token = job()

    assert token is not None
    assert token.token_type.lower() == "bearer" and token.scope == "key:read"
    me = requests.get(f"{keygrant}/v1/me", auth=token, timeout=TIMEOUT)  # Authorization: Bearer <key>
    assert me.status_code == 200
    assert me.json()["user"]["username"] == "carol"
    assert Grant.objects.get(user__username="carol").client_id == f"unverified:{CLIENT_ID}"


def test_the_library_slows_down_when_told_and_still_gets_the_key(client, person, settings):
    settings.OAUTH_DEVICE_POLL_INTERVAL_SECONDS = 3
    started = client.authorize_device(scope="key:read")
    # Half a second between polls is far too fast for a 3 s interval. The library
    # adds `slow_down_interval` on slow_down; 1 s instead of RFC 8628's 5 keeps the test short.
    job = DeviceAuthorizationPollingJob(client, started, interval=0.5, slow_down_interval=1)

    assert job() is None  # authorization_pending
    assert job() is None  # slow_down
    assert job.interval == 1.5, "the library heard slow_down"
    assert DeviceAuthorization.objects.get().interval == 8, "Keygrant's interval grew by 5 s"
    person.approve_device(complete_uri=started.verification_uri_complete)

    assert job() is not None


def test_the_library_reports_a_denial_as_access_denied(client, person):
    started = client.authorize_device(scope="key:read")
    job = DeviceAuthorizationPollingJob(client, started)

    person.deny_device(user_code=started.user_code)

    with pytest.raises(AccessDenied):
        job()
