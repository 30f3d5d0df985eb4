"""Every admin list costs the same number of queries at 5 rows and at 60 (no N+1)."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

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


@pytest.mark.parametrize(
    "name", ["accounts_apikey", "accounts_auditevent", "oauthprovider_grant", "oauthprovider_authorizationcode"]
)
def test_sixty_rows_are_listed(operator_client, name):
    populate(60)
    page = operator_client.get(reverse(f"admin:{name}_changelist")).content.decode()
    assert page.count('class="action-select"') >= 60 or page.count("<tr") >= 60
