"""Keygrant's own settings, with URLs that add the floor views (bench/floor.py).

The floor then runs in the same gunicorn, with the same middleware, database,
connection settings and workers as the paths it is compared with.
"""

from config.settings import *  # noqa: F403

ROOT_URLCONF = "bench.urls"
