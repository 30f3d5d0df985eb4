from django.urls import path

from oauthprovider.views import (
    api,
    apps,
    authorize,
    device,
    introspect,
    metadata,
    register,
    resource_metadata,
    revoke,
    token,
)

app_name = "oauth"

# Ordered by how often they are asked for: URLs are matched in order, on every request.
urlpatterns = [
    path("v1/me", api.me, name="api-me"),
    path("getKeys/token", token.token, name="token"),
    path(".well-known/oauth-authorization-server", metadata.oauth_authorization_server, name="metadata"),
    path(
        ".well-known/oauth-protected-resource",
        resource_metadata.oauth_protected_resource,
        name="protected-resource-metadata",
    ),
    path(
        ".well-known/oauth-protected-resource/<path:suffix>",
        resource_metadata.oauth_protected_resource,
        name="protected-resource-metadata-suffixed",
    ),
    path("getKeys/authorize", authorize.authorize, name="authorize"),
    path("getKeys/device/code", device.device_code, name="device-code"),
    path("getKeys/device", device.device, name="device"),
    path("getKeys/register", register.register, name="register"),
    path("getKeys/revoke", revoke.revoke, name="revoke"),
    path("getKeys/introspect", introspect.introspect, name="introspect"),
    # Connected apps: the signed-in user's grants (pages for people, not endpoints).
    path("apps/", apps.app_list, name="apps"),
    path("apps/<int:grant_id>/revoke/", apps.app_revoke, name="app_revoke"),
]
