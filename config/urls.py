from django.contrib import admin
from django.urls import include, path

admin.site.site_header = "Keygrant administration"
admin.site.site_title = "Keygrant admin"

handler400 = "config.views.bad_request"
handler403 = "config.views.permission_denied"
handler404 = "config.views.page_not_found"
# A database outage is a 503 clients can retry, not a 500 (oauthprovider/availability.py).
handler500 = "oauthprovider.availability.server_error"

# The machine endpoints come first: URLs are matched in order, on every request.
urlpatterns = [
    path("", include("oauthprovider.urls")),
    path("", include("accounts.urls")),
    path("admin/", admin.site.urls),
]
