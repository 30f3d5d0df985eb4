"""Every admin list costs the same number of queries at 5 rows and at 60 (no N+1)."""

import pytest
from django.contrib import admin
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts.models import ApiKey, AuditEvent
from oauthprovider.models import AuthorizationCode, Grant
from tests.admin.conftest import populate

LISTS = [
    ("accounts_user", ""),
    ("accounts_apikey", ""),
    ("accounts_apikey", "status=active&q=key"),
    ("accounts_auditevent", ""),
    ("accounts_auditevent", "kind__exact=grant_revoked&_facets=True"),
    ("oauthprovider_grant", ""),
    ("oauthprovider_grant", "status=revoked&q=app"),
    ("oauthprovider_authorizationcode", ""),
    ("oauthprovider_authorizationcode", "state=pending&_facets=True"),
]


def queries_for(client, url: str) -> list[str]:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200
    return [q["sql"] for q in captured.captured_queries]


@pytest.mark.parametrize(("name", "query"), LISTS)
def test_the_query_count_stays_flat_as_rows_grow(operator_client, name, query):
    url = f"{reverse(f'admin:{name}_changelist')}?{query}"
    populate(5)
    queries_for(operator_client, url)  # warm the per-process caches
    few = queries_for(operator_client, url)
    populate(55, start=5)
    many = queries_for(operator_client, url)
    assert len(many) == len(few), "\n".join(many)


@pytest.mark.parametrize("model", [ApiKey, AuditEvent, Grant, AuthorizationCode])
def test_every_row_is_listed_up_to_a_page(operator_client, model):
    populate(60)
    info = model._meta
    page = operator_client.get(reverse(f"admin:{info.app_label}_{info.model_name}_changelist")).content.decode()
    table = page.split('<table id="result_list">', 1)[1].split("</table>", 1)[0]
    rows = table.split("<tbody>", 1)[1].count("<tr")
    assert rows == min(model.objects.count(), admin.site._registry[model].list_per_page)
    assert rows >= 60
