"""Letting go of the database connection while bytes move, so transfers don't pin it.

A layer upload or download can take minutes; with persistent connections each one
would keep a database connection open but idle all that time, and a few hundred
parallel transfers would exhaust PostgreSQL's connection limit. Closing it before a
transfer costs one reconnect afterwards (a millisecond or two), only when needed.
"""

from django.db import connections

# Bodies smaller than this go by too fast for a reconnect to pay off.
RELEASE_ABOVE_BYTES = 4 * 1024 * 1024


def release_db_connections(expected_bytes: int | None = None) -> None:
    """Close this thread's idle connections before a transfer of `expected_bytes`.

    Unknown sizes (chunked bodies) count as large. Connections inside a
    transaction are kept: closing them would lose it. SQLite connections are kept
    too: an open file in this process holds nothing a server could run out of, and
    reopening one (with its PRAGMAs) is the cost this saves elsewhere.
    """
    if expected_bytes is not None and expected_bytes < RELEASE_ABOVE_BYTES:
        return
    for connection in connections.all(initialized_only=True):
        if not connection.in_atomic_block and connection.vendor != "sqlite":
            connection.close()
