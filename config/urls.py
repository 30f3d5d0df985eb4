from django.contrib import admin
from django.urls import include, path

admin.site.site_header = "Keygrant administration"
admin.site.site_title = "Keygrant admin"

urlpatterns = [
    path("admin/", admin.site.urls),
    path("", include("oauthprovider.urls")),
    path("", include("accounts.urls")),
]

# A database outage is a 503 clients can retry, not a 500 (oauthprovider/availability.py).
handler500 = "oauthprovider.availability.server_error"
