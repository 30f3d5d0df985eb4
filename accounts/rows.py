"""Fixed statements for the rows the hot paths read and write, with values converted by the models' own fields.

The token exchange, `/v1/me` and the consent read and write a few rows each
(a code, a key, an audit event, a pending request, the grant). Through the
ORM each statement is compiled anew on every call, and a raw queryset works
out its columns and converters anew on every call; on these paths either
cost more than the database's own work (docs/benchmarks.md). A fixed
statement with the fields' own conversion (`get_db_prep_save` going in,
`from_db_value` coming out) reads and writes the same values on every
database.
"""

from collections.abc import Iterable, Sequence
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


class Select:
    """A fixed SELECT whose rows become instances of `model`, laid out once.

    `sql` reads "{fields}" where the columns of `fields` go (every concrete
    field by default; others are deferred), each prefixed with `alias.` when
    given; the statement selects `extra` columns after them, which become
    attributes of the same names, as a raw queryset's annotations would.
    The converters are the ones the ORM applies (the backend's and the
    fields' `from_db_value`), looked up once per database vendor.
    """

    def __init__(
        self,
        model: type[models.Model],
        sql: str,
        *,
        alias: str = "",
        fields: Iterable[str] = (),
        extra: Iterable[str] = (),
    ) -> None:
        wanted = set(fields)
        self.model = model
        self.fields = [field for field in model._meta.concrete_fields if not wanted or field.name in wanted]
        if wanted and len(self.fields) != len(wanted):
            raise ValueError(f"not concrete fields of {model.__name__}: {wanted - {f.name for f in self.fields}}")
        self.attnames = [field.attname for field in self.fields]
        self.extra: Sequence[str] = tuple(extra)
        prefix = f"{alias}." if alias else ""
        self.sql = sql.format(fields=", ".join(prefix + connection.ops.quote_name(f.column) for f in self.fields))
        self._converters: dict[str, list] = {}

    def all(self, params: Sequence) -> list[models.Model]:
        with connection.cursor() as cursor:
            cursor.execute(self.sql, params)
            rows = cursor.fetchall()
        return [self._instance(row) for row in rows]

    def first(self, params: Sequence) -> models.Model | None:
        with connection.cursor() as cursor:
            cursor.execute(self.sql, params)
            row = cursor.fetchone()
        return None if row is None else self._instance(row)

    def _instance(self, row: Sequence) -> models.Model:
        count = len(self.fields)
        if len(row) != count + len(self.extra):
            raise ValueError(f"{len(row)} columns read, {count} fields and {len(self.extra)} extra declared")
        values = list(row)
        for position, converters, column in self._converters_here():
            value = values[position]
            for convert in converters:
                value = convert(value, column, connection)
            values[position] = value
        instance = self.model.from_db(connection.alias, self.attnames, values[:count])
        for name, value in zip(self.extra, values[count:], strict=True):
            setattr(instance, name, value)
        return instance

    def _converters_here(self) -> list:
        """(position, converters, column) of each field that needs converting on this database."""
        if connection.vendor not in self._converters:
            found = []
            for position, field in enumerate(self.fields):
                column = field.get_col(field.model._meta.db_table)
                converters = connection.ops.get_db_converters(column) + column.get_db_converters(connection)
                if converters:
                    found.append((position, converters, column))
            self._converters[connection.vendor] = found
        return self._converters[connection.vendor]
