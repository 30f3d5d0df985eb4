"""The floor: what a bare Django view costs on the same server, for each kind of hot path.

Keygrant's paths are reported as a ratio of these. Each does the least a
view of its kind can do, through the ORM as any Django app would.
"""

import hashlib

from django.db import transaction
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from accounts.models import ApiKey

CONSTANT = {"issuer": "http://127.0.0.1", "response_types_supported": ["code"]}


def _key_hash(request: HttpRequest) -> str:
    return hashlib.sha256(request.headers.get("X-Api-Key", "").encode()).hexdigest()


@require_GET
def constant_json(request: HttpRequest) -> JsonResponse:
    """Compared with the metadata document."""
    return JsonResponse(CONSTANT)


@require_GET
def one_select(request: HttpRequest) -> JsonResponse:
    """One indexed SELECT: compared with /v1/me's key lookup."""
    row = ApiKey.objects.filter(key_hash=_key_hash(request)).values("name", "prefix").first()
    return JsonResponse({"key": row}, status=200 if row else 404)


@csrf_exempt  # no cookie is read
@require_POST
def select_and_update(request: HttpRequest) -> JsonResponse:
    """One indexed SELECT and one UPDATE in a transaction: compared with the token exchange."""
    with transaction.atomic():
        key_id = ApiKey.objects.filter(key_hash=_key_hash(request)).values_list("pk", flat=True).first()
        if key_id is None:
            return JsonResponse({"key": None}, status=404)
        ApiKey.objects.filter(pk=key_id).update(last_used_at=timezone.now())
    return JsonResponse({"key": key_id})
