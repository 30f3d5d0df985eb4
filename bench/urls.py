from django.urls import include, path

from bench import floor
from config.urls import urlpatterns as keygrant_urlpatterns

urlpatterns = [
    path("bench/floor/json", floor.constant_json),
    path("bench/floor/select", floor.one_select),
    path("bench/floor/select-update", floor.select_and_update),
    path("", include(keygrant_urlpatterns)),
]
