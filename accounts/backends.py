"""Django's ModelBackend, reading the signed-in person with one fixed statement.

Every signed-in request loads its user. Through the ORM the lookup is
compiled anew each time, which cost a tenth of a consent (docs/benchmarks.md);
a fixed statement reads the same row. Sessions made by Django's own backend
(listed second in AUTHENTICATION_BACKENDS) keep working.
"""

from django.contrib.auth.backends import ModelBackend
from django.core.exceptions import ValidationError

from accounts.models import User
from accounts.rows import Select

_BY_ID = Select(User, f"SELECT {{fields}} FROM {User._meta.db_table} WHERE id = %s")


class UserBackend(ModelBackend):
    def get_user(self, user_id):
        try:
            pk = User._meta.pk.to_python(user_id)
        except ValidationError:
            return None
        user = _BY_ID.first([pk])
        return user if user is not None and self.user_can_authenticate(user) else None
