from django.test import Client

from tests.conftest import CLIENT_ID, REDIRECT_URI, approve, authorize_params, exchange, query_of


def test_a_client_gets_a_working_key_from_authorize_to_the_api(alice_client, pkce_pair):
    location = approve(alice_client, authorize_params(pkce_pair))
    assert location.startswith(REDIRECT_URI + "?")
    query = query_of(location)
    assert query["state"] == ["random-state-value"]
    assert query["iss"] == ["http://127.0.0.1:8000"]

    app = Client()  # the app's own server or browser: no cookies of the user
    response = exchange(app, query["code"][0], pkce_pair)
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["scope"] == "key:read"
    assert response["Cache-Control"] == "no-store"

    me = app.get("/v1/me", HTTP_X_API_KEY=body["access_token"])
    assert me.status_code == 200
    assert me.json()["user"]["username"] == "alice"
    assert me.json()["key"]["name"] == CLIENT_ID
    assert body["access_token"] not in me.content.decode()
