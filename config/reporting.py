"""What error reports may show: Django's filter, plus no secret in any traceback variable.

`@sensitive_post_parameters` on the machine endpoints hides the code, the
verifier, tokens and secrets in a report's POST section. A traceback's local
variables are another way out: `token_request` holds the verifier,
`raw_key` the API key just decrypted, a fake in a test its arguments. So
every frame variable whose value contains a secret the request carried
(its sensitive POST values, an `x-api-key` or `Authorization` credential)
or anything shaped like a Keygrant API key is replaced, whatever its name.
Settings: DEFAULT_EXCEPTION_REPORTER_FILTER.
"""

import base64
import binascii
import re
from urllib.parse import unquote

from django.http import HttpRequest
from django.views.debug import SafeExceptionReporterFilter

_API_KEY = re.compile(r"kg_[A-Za-z0-9]{16,}")
_SHORTEST_SECRET = 8  # shorter values (a "1", a client_id) would blank out everything


class SecretsFilter(SafeExceptionReporterFilter):
    def get_traceback_frame_variables(self, request, tb_frame):
        variables = super().get_traceback_frame_variables(request, tb_frame)
        secrets = _secrets_carried_by(request)
        cleansed = []
        for name, value in variables:
            try:
                text = repr(value)
            except Exception:  # noqa: BLE001 - a broken __repr__ must not hide the report
                text = ""
            if _API_KEY.search(text) or any(secret in text for secret in secrets):
                value = self.cleansed_substitute
            cleansed.append((name, value))
        return cleansed


def _secrets_carried_by(request: HttpRequest | None) -> list[str]:
    if request is None:
        return []
    values: list[str] = []
    names = getattr(request, "sensitive_post_parameters", ())
    try:
        post = request.POST
        if names == "__ALL__":
            values += [value for _, items in post.lists() for value in items]
        else:
            values += [value for name in names for value in post.getlist(name)]
    except Exception:  # noqa: BLE001 - an unreadable body carries nothing we could show
        pass
    values.append(request.headers.get("X-Api-Key", ""))
    scheme, _, credential = request.headers.get("Authorization", "").partition(" ")
    values.append(credential.strip())
    if scheme.lower() == "basic":
        try:
            _, _, password = base64.b64decode(credential.strip()).decode("utf-8").partition(":")
            values += [unquote(password), password]
        except (binascii.Error, UnicodeDecodeError, ValueError):
            pass
    return [value for value in values if len(value) >= _SHORTEST_SECRET]
