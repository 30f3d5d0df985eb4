"""Django's database sessions, read with one fixed statement (SESSION_ENGINE).

Every signed-in request loads its session; through the ORM the lookup is
compiled anew each time (docs/benchmarks.md). Everything else is Django's.
"""

import functools

from django.contrib.sessions.backends import db
from django.db import connection
from django.utils import timezone

from accounts.rows import Select


@functools.cache
def _session_select(model) -> Select:
    return Select(model, f"SELECT {{fields}} FROM {model._meta.db_table} WHERE session_key = %s AND expire_date > %s")


class SessionStore(db.SessionStore):
    def _get_session_from_db(self):
        now = connection.ops.adapt_datetimefield_value(timezone.now())
        session = _session_select(self.model).first([self.session_key, now])
        if session is None:
            self._session_key = None
        return session
