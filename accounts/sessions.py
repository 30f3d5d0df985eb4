"""Django's database sessions, read with one fixed statement (SESSION_ENGINE).

Every signed-in request loads its session; through the ORM the lookup is
compiled anew each time (docs/benchmarks.md). Everything else is Django's.
"""

from django.contrib.sessions.backends import db
from django.db import connection
from django.utils import timezone


class SessionStore(db.SessionStore):
    def _get_session_from_db(self):
        sql = f"SELECT * FROM {self.model._meta.db_table} WHERE session_key = %s AND expire_date > %s"
        now = connection.ops.adapt_datetimefield_value(timezone.now())
        session = next(iter(self.model.objects.raw(sql, [self.session_key, now])), None)
        if session is None:
            self._session_key = None
        return session
