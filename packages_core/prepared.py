"""Queries compiled once and run many times, for the few lookups every request makes.

Turning a QuerySet into SQL costs about 0.4 ms of Python; running the SQL costs about
30 µs on SQLite. A manifest HEAD made three such queries, so most of its time went to
compiling the same SQL again. A `PreparedQuery` builds its QuerySet once per thread and
database with marker values in place of the real ones, keeps the SQL Django made for
that backend (its quoting, its functions) and the compiler, and from then on runs that
SQL with the real values, converting the rows as Django would (booleans, dates, JSON).

On PostgreSQL the database plans each query too, and planning the manifest lookup (five
joined tables) took 0.4-0.5 ms of the 0.6 ms it cost; run as a server-side prepared
statement it takes 0.15 ms. Django binds parameters on the client and disables
psycopg's prepared statements (they break connection poolers such as PgBouncer in
transaction mode), so these queries are sent with server-side binding, and prepared by
psycopg after `prepare_threshold` runs on a connection, only where the database's
OPTIONS set `prepare_threshold` (the forge site does, forge/environment.py).

Only plain equality lookups may take a marker: a value the query transforms (`LIKE`
patterns, lists of any length) would not match the SQL compiled once, and is refused
when the query is prepared.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from django.core.exceptions import EmptyResultSet, ImproperlyConfigured
from django.db import connections
from django.db.models import QuerySet

STRING_MARKER = "\x00prepared-{}\x00"
# Integers no caller's query holds, within a 32-bit column's range (Django finds
# nothing, without asking the database, for a value a column cannot hold).
INTEGER_MARKER_BASE = -2_147_000_000


def _marker(kind: type, index: int):
    if kind is str:
        return STRING_MARKER.format(index)
    if kind is int:
        return INTEGER_MARKER_BASE - index
    raise TypeError(f"prepared values are str or int, not {kind.__name__}")


class PreparedQuery:
    """`build(*values)` returns the QuerySet (usually `.values_list(...)`) for some
    values of the types `kinds` (str or int); `rows(*values)` runs its SQL for these
    values and returns the rows as `build(*values)` would have.
    """

    def __init__(self, build: Callable[..., QuerySet], *kinds: type):
        self.build, self.kinds, self.arity = build, kinds, len(kinds)
        self._compiled = threading.local()

    def rows(self, *values, using: str = "default") -> list[tuple]:
        if len(values) != self.arity:
            raise TypeError(f"this query takes {self.arity} values, not {len(values)}")
        compiler, sql, slots, converters = self._compile(using)
        params = [values[slot] if isinstance(slot, int) else slot.value for slot in slots]
        with _cursor(connections[using]) as cursor:
            cursor.execute(sql, params)
            fetched = cursor.fetchall()
        if not fetched or not converters:
            return fetched
        return [tuple(row) for row in compiler.apply_converters(fetched, converters)]

    def first(self, *values, using: str = "default") -> tuple | None:
        rows = self.rows(*values, using=using)
        return rows[0] if rows else None

    def _compile(self, using: str):
        cache = self._compiled.__dict__
        if using not in cache:
            markers = [_marker(kind, i) for i, kind in enumerate(self.kinds)]
            queryset = self.build(*markers)
            compiler = queryset.query.get_compiler(using=using)
            try:
                sql, params = compiler.as_sql()
            except EmptyResultSet:
                raise ValueError(
                    "the query finds nothing for the marker values: something checked a "
                    "value (Owner.objects.named() does) before it reached the SQL"
                ) from None
            slots = [_slot(param, markers) for param in params]
            missing = set(range(self.arity)) - {s for s in slots if isinstance(s, int)}
            if missing:
                raise ValueError(f"values {sorted(missing)} do not reach the SQL as they are")
            # What results_iter() would work out again for every result.
            columns = [selected[0] for selected in compiler.select[: compiler.col_count]]
            cache[using] = (compiler, sql, slots, compiler.get_converters(columns))
        return cache[using]


def plans_kept(connection) -> bool:
    """Whether the database keeps the plans of prepared queries: PostgreSQL through
    psycopg 3 with a `prepare_threshold` in its OPTIONS.
    """
    return (
        connection.vendor == "postgresql"
        and _SERVER_BINDING_CURSOR is not None
        and connection.settings_dict["OPTIONS"].get("prepare_threshold") is not None
    )


def _cursor(connection):
    """A cursor for a prepared query: Django's own, or where the database keeps plans,
    one binding parameters on the server (what psycopg prepares), made and wrapped as
    Django makes its cursors (health check, query logging, error wrapping).
    """
    if not plans_kept(connection):
        return connection.cursor()
    connection.close_if_health_check_failed()
    connection.ensure_connection()
    with connection.wrap_database_errors:
        return connection._prepare_cursor(_SERVER_BINDING_CURSOR(connection.connection))


def _server_binding_cursor():
    try:
        from django.db.backends.postgresql.base import ServerBindingCursor
    except (ImportError, ImproperlyConfigured):  # psycopg2, or no PostgreSQL driver
        return None
    return ServerBindingCursor


_SERVER_BINDING_CURSOR = _server_binding_cursor()


class _Fixed:
    """A parameter of the compiled SQL that does not come from the caller."""

    def __init__(self, value):
        self.value = value


def _slot(param, markers: list):
    for index, marker in enumerate(markers):
        if type(param) is type(marker) and param == marker:
            return index
    if isinstance(param, str) and "\x00prepared-" in param:
        raise ValueError(f"a prepared value is transformed in the SQL: {param!r}")
    return _Fixed(param)
