"""Plain INSERTs and UPDATEs for the rows the hot paths write, with values prepared by the models' own fields.

The token exchange and the consent write a few rows each (a code, an audit
event, a pending request, the grant). Through the ORM each INSERT is compiled anew on
every call, which cost more than the database's own work on these paths
(docs/benchmarks.md); a fixed statement with the fields' own conversion
(`get_db_prep_save`) writes the same values on every database.
"""

from typing import Any

from django.db import connection, models


def row_values(model: type[models.Model], values: dict[str, Any]) -> dict[str, Any]:
    """`values` by field name, as the database takes them: columns and prepared values."""
    meta = model._meta
    fields = {name: meta.get_field(name) for name in values}
    return {fields[name].column: fields[name].get_db_prep_save(value, connection) for name, value in values.items()}


def insert_sql(model: type[models.Model], columns) -> str:
    quote = connection.ops.quote_name
    return (
        f"INSERT INTO {quote(model._meta.db_table)} ({', '.join(quote(column) for column in columns)})"
        f" VALUES ({', '.join(['%s'] * len(columns))})"
    )


def update_statement(instance: models.Model, names) -> tuple[str, list]:
    """The UPDATE by primary key that writes the fields `names` of a saved `instance`, and its parameters."""
    model = type(instance)
    meta = model._meta
    row = row_values(model, {name: getattr(instance, meta.get_field(name).attname) for name in names})
    quote = connection.ops.quote_name
    assignments = ", ".join(f"{quote(column)} = %s" for column in row)
    sql = f"UPDATE {quote(meta.db_table)} SET {assignments} WHERE {quote(meta.pk.column)} = %s"
    return sql, [*row.values(), instance.pk]


def insert_statement(model: type[models.Model], values: dict[str, Any]) -> tuple[str, list]:
    """The INSERT of one row of `model` and its parameters (every NOT NULL column without a
    database default must be in `values`)."""
    row = row_values(model, values)
    return insert_sql(model, row), list(row.values())


def insert_row(model: type[models.Model], values: dict[str, Any]) -> None:
    """Insert one row of `model` (every NOT NULL column without a database default must be in `values`)."""
    with connection.cursor() as cursor:
        cursor.execute(*insert_statement(model, values))
