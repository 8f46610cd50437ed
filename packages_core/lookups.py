"""The lookups on every request's path, as prepared queries: a user, an access token.

A registry checks who is calling on every request of a push or pull; these answer from
SQL compiled once (packages_core/prepared.py) instead of the ORM's ~0.4 ms per query.
Instances come back with the fields authorisation reads loaded and the rest deferred
(read on first access, as Django does for `.only()`).

A user's or a token's row is then reused by this process for
PACKAGES["IDENTITY_CACHE_SECONDS"]: a pull with credentials asked the database twice,
once for who is calling and once for the manifest, and the first answer rarely changes.
Saving or deleting a user or a token here forgets every row at once; elsewhere a
deactivated user, a changed password or a revoked token takes effect that much later at
most. Rows are kept, never instances, so no request sees another's changes to one.
"""

from __future__ import annotations

import functools

from django.contrib.auth import get_user_model
from django.db.models.functions import Lower

from packages_core.conf import packages_settings
from packages_core.memo import Memo
from packages_core.models import AccessToken, Owner
from packages_core.models.owners import is_owner_name
from packages_core.prepared import PreparedQuery

# The user and token rows this process read lately, by ("user", pk), ("token", pk) and
# ("token-hash", hash); `_generation` counts forget() calls, so that a row read before one
# is not kept after it.
_rows = Memo()
_generation = 0

# In the model's field order, as Model.from_db wants them.
TOKEN_FIELDS = [
    field.attname
    for field in AccessToken._meta.concrete_fields
    if field.attname not in ("token_prefix", "created")
]


@functools.cache
def _user_fields(model) -> list[str]:
    """The user fields access decisions read, those this user model has, in the model's
    order (`Model.from_db` takes the values of a subset in that order).
    """
    wanted = {model._meta.pk.attname, "password", "is_active", "is_superuser", "is_staff"}
    wanted.add(model._meta.get_field(model.USERNAME_FIELD).attname)
    return [f.attname for f in model._meta.concrete_fields if f.attname in wanted]


def _active(model, pk) -> dict:
    """The filter for an active user with this key (a model without is_active: any)."""
    concrete = {field.attname for field in model._meta.concrete_fields}
    return {"pk": pk, "is_active": True} if "is_active" in concrete else {"pk": pk}


@functools.cache
def _user_query(model) -> PreparedQuery:
    fields = _user_fields(model)
    return PreparedQuery(
        lambda pk: model.objects.filter(**_active(model, pk)).values_list(*fields)[:1], int
    )


def active_user(pk):
    """The active user with this primary key, or None."""
    model = get_user_model()
    if not isinstance(pk, int) or isinstance(pk, bool):
        # Another key type (a UUID, say): the ORM's own lookup.
        return model.objects.filter(**_active(model, pk)).first()
    row = _remembered(("user", pk), _user_query(model), pk)
    return model.from_db("default", _user_fields(model), row) if row is not None else None


_TOKEN_BY_HASH = PreparedQuery(
    lambda hash_: AccessToken.objects.filter(token_hash=hash_).values_list(*TOKEN_FIELDS)[:1], str
)
_TOKEN_BY_ID = PreparedQuery(
    lambda pk: AccessToken.objects.filter(pk=pk).values_list(*TOKEN_FIELDS)[:1], int
)


def access_token(*, token_hash: str | None = None, pk: int | None = None) -> AccessToken | None:
    """The access token with this hash or primary key (active or not), or None."""
    if token_hash is not None:
        row = _remembered(("token-hash", token_hash), _TOKEN_BY_HASH, token_hash)
    else:
        row = _remembered(("token", pk), _TOKEN_BY_ID, pk)
    return AccessToken.from_db("default", TOKEN_FIELDS, row) if row is not None else None


def _remembered(key: tuple, query: PreparedQuery, argument):
    """The query's first row, reused for IDENTITY_CACHE_SECONDS; misses are not kept,
    so a new user or token works at once.
    """
    seconds = packages_settings.IDENTITY_CACHE_SECONDS
    if seconds <= 0:
        return query.first(argument)
    row = _rows.get(key)
    if row is None:
        generation = _generation
        row = query.first(argument)
        if row is not None and generation == _generation:
            _rows.set(key, row, seconds)
    return row


def forget(**kwargs) -> None:
    """Read users and tokens afresh from now on (a receiver for their models' signals)."""
    global _generation
    _generation += 1
    _rows.clear()


OWNER_FIELDS = [field.attname for field in Owner._meta.concrete_fields]
_OWNER_BY_NAME = PreparedQuery(
    # Not Owner.objects.named(), whose check of the name would refuse the marker the
    # SQL is compiled with; owner_named() checks the real names.
    lambda name: (
        Owner.objects.alias(lower_name=Lower("name"))
        .filter(lower_name=name)
        .values_list(*OWNER_FIELDS)[:1]
    ),
    str,
)


def owner_named(name: str) -> Owner | None:
    """The owner with this name (case-insensitively), or None."""
    if not is_owner_name(name):
        return None
    row = _OWNER_BY_NAME.first(name.lower())
    return owner_from_row(row) if row is not None else None


def owner_from_row(values) -> Owner:
    """An Owner from its fields' values in OWNER_FIELDS order (as another query got them)."""
    return Owner.from_db("default", OWNER_FIELDS, values)
