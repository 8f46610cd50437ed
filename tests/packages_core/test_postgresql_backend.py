"""The PostgreSQL backend's cheap health check, and prepared queries planned once."""

from __future__ import annotations

import time

import psycopg
import pytest
from django.core.signals import request_started
from django.db import connection

from packages_core.models import Owner
from packages_core.prepared import PreparedQuery, plans_kept
from tests.conftest import on_postgresql

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def postgresql():
    if not on_postgresql():
        pytest.skip("about PostgreSQL connections; runs on the PostgreSQL pass")


def other_connection() -> psycopg.Connection:
    """A connection of the test's own to the same database, to watch ours from outside."""
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("prepare_threshold", None)
    return psycopg.connect(**params, autocommit=True)


def last_query_of(pid: int) -> str:
    with other_connection() as watcher:
        row = watcher.execute("SELECT query FROM pg_stat_activity WHERE pid = %s", [pid]).fetchone()
    return row[0]


def our_pid() -> int:
    connection.ensure_connection()
    return connection.connection.info.backend_pid


def test_an_idle_connection_is_usable_without_a_round_trip():
    pid = our_pid()
    with connection.cursor() as cursor:
        cursor.execute("SELECT 'the last thing we asked'")

    assert connection.is_usable()
    # Django's own check would have sent SELECT 1.
    assert last_query_of(pid) == "SELECT 'the last thing we asked'"


def test_a_connection_inside_a_transaction_is_asked_properly():
    pid = our_pid()
    connection.connection.execute("BEGIN")
    try:
        assert connection.is_usable()
        assert last_query_of(pid) == "SELECT 1"
    finally:
        connection.connection.execute("ROLLBACK")


def test_a_connection_the_server_ended_is_replaced_on_the_next_request():
    pid = our_pid()
    with other_connection() as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", [pid])
    deadline = time.monotonic() + 5
    while connection.is_usable() and time.monotonic() < deadline:
        time.sleep(0.01)  # the server's goodbye is on its way

    assert not connection.is_usable()
    request_started.send(sender=None)  # a request begins: the health check applies
    assert Owner.objects.count() == 0
    assert our_pid() != pid


def prepared_statements() -> list[str]:
    """The statements prepared on our connection (pg_prepared_statements is per session)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        return [row[0] for row in cursor.fetchall()]


def owners_named():
    return PreparedQuery(
        lambda name: Owner.objects.filter(name=name).values_list("name", "created")[:1], str
    )


def test_a_prepared_query_is_planned_once_per_connection(alice):
    assert plans_kept(connection)  # the forge site turns prepared statements on
    query = owners_named()

    answers = {query.first("alice") for _ in range(8)}

    assert answers == {Owner.objects.filter(name="alice").values_list("name", "created").get()}
    assert any("packages_core_owner" in s for s in prepared_statements())


def test_without_a_prepare_threshold_nothing_is_prepared(alice):
    options = connection.settings_dict["OPTIONS"]
    saved = options.pop("prepare_threshold")
    connection.close()
    try:
        assert not plans_kept(connection)
        query = owners_named()
        assert [query.first("alice")[0] for _ in range(8)] == ["alice"] * 8
        assert prepared_statements() == []
    finally:
        options["prepare_threshold"] = saved
        connection.close()
