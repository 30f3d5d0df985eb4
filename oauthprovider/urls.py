from django.urls import path

from oauthprovider.views import api, authorize, metadata, token

app_name = "oauth"

urlpatterns = [
    path("getKeys/authorize", authorize.authorize, name="authorize"),
    path("getKeys/token", token.token, name="token"),
    path("v1/me", api.me, name="api-me"),
    path(".well-known/oauth-authorization-server", metadata.oauth_authorization_server, name="metadata"),
]
