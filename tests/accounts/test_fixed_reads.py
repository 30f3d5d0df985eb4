"""accounts.rows.Select: a fixed SELECT reads rows as the ORM would, on SQLite and on PostgreSQL."""

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from accounts.audit import SYSTEM
from accounts.limits import KeyLimits
from accounts.models import ApiKey, AuditEvent
from accounts.rows import Select
from accounts.services import key_create

KEYS = ApiKey._meta.db_table


@pytest.fixture
def limited_key(alice):
    expires_at = (timezone.now() + timedelta(days=3)).replace(microsecond=0)
    key, _ = key_create(
        user=alice,
        name="limited",
        context=SYSTEM,
        limits=KeyLimits(expires_at=expires_at, allowed_networks=["203.0.113.0/24"]),
    )
    return key


def test_whole_rows_read_the_same_values_as_the_orm(limited_key):
    by_id = Select(ApiKey, f"SELECT {{fields}} FROM {KEYS} WHERE id = %s")
    read = by_id.first([limited_key.pk])
    orm = ApiKey.objects.get(pk=limited_key.pk)
    for field in ApiKey._meta.concrete_fields:
        assert getattr(read, field.attname) == getattr(orm, field.attname), field.name
    # Converted by the fields, not left as the driver returns them (SQLite gives strings for these).
    assert read.allowed_networks == ["203.0.113.0/24"]
    assert read.expires_at == limited_key.expires_at and read.expires_at.tzinfo is not None
    assert read._state.adding is False and read._state.db == connection.alias


def test_an_instance_read_can_be_saved_like_one_from_the_orm(limited_key):
    read = Select(ApiKey, f"SELECT {{fields}} FROM {KEYS} WHERE id = %s").first([limited_key.pk])
    read.name = "renamed"
    read.save(update_fields=["name"])
    assert ApiKey.objects.get(pk=limited_key.pk).name == "renamed"
    assert ApiKey.objects.count() == 1, "saved as an update, not inserted again"


def test_some_fields_leave_the_others_deferred_and_extra_columns_become_attributes(limited_key, alice):
    select = Select(
        ApiKey,
        "SELECT {fields}, u.username AS owner FROM " + KEYS + " k JOIN accounts_user u ON u.id = k.user_id"
        " WHERE k.id = %s",
        alias="k",
        fields=("id", "name", "allowed_networks"),
        extra=("owner",),
    )
    read = select.first([limited_key.pk])
    assert (read.pk, read.name, read.allowed_networks, read.owner) == (
        limited_key.pk,
        "limited",
        ["203.0.113.0/24"],
        "alice",
    )
    assert read.get_deferred_fields() >= {"key_encrypted", "expires_at", "created_at"}


def test_all_keeps_the_statements_order_and_first_reads_nothing_as_none(alice):
    for name in ("b", "a", "c"):
        key_create(user=alice, name=name, context=SYSTEM)
    by_name = Select(ApiKey, f"SELECT {{fields}} FROM {KEYS} WHERE user_id = %s ORDER BY name")
    assert [key.name for key in by_name.all([alice.pk])] == ["a", "b", "c"]
    assert by_name.first([alice.pk + 1000]) is None
    assert by_name.all([alice.pk + 1000]) == []


def test_a_field_the_model_does_not_have_is_refused_when_the_statement_is_built():
    with pytest.raises(ValueError, match="colour"):
        Select(ApiKey, f"SELECT {{fields}} FROM {KEYS}", fields=("name", "colour"))


def test_a_row_with_more_or_fewer_columns_than_declared_is_an_error_not_a_shifted_instance(limited_key):
    undeclared = Select(ApiKey, f"SELECT {{fields}}, 1 AS surprise FROM {KEYS} WHERE id = %s")
    with pytest.raises(ValueError, match="columns read"):
        undeclared.first([limited_key.pk])
    missing = Select(ApiKey, f"SELECT {{fields}} FROM {KEYS} WHERE id = %s", extra=("owner",))
    with pytest.raises(ValueError, match="columns read"):
        missing.first([limited_key.pk])


def test_an_event_read_back_through_a_fixed_read_keeps_its_json_detail(alice):
    AuditEvent.objects.create(
        kind=AuditEvent.Kind.KEY_CREATED, actor_kind=AuditEvent.Actor.USER, subject=alice, detail={"n": [1, "x"]}
    )
    read = Select(AuditEvent, f"SELECT {{fields}} FROM {AuditEvent._meta.db_table} WHERE subject_id = %s")
    assert read.first([alice.pk]).detail == {"n": [1, "x"]}
