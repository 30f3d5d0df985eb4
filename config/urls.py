from django.contrib import admin
from django.urls import include, path

admin.site.site_header = "Keygrant administration"
admin.site.site_title = "Keygrant admin"

urlpatterns = [
    path("admin/", admin.site.urls),
    path("", include("oauthprovider.urls")),
    path("", include("accounts.urls")),
]
