"""The seam to the host site: how users map to owners and who may read or write where.

A host names its own subclass in `PACKAGES["ACCESS_ADAPTER"]`; the default follows
Gitea's rules.
"""

from __future__ import annotations

import re

from django.db.models import Q, QuerySet

from packages_core.conf import packages_settings
from packages_core.models import Membership, Owner
from packages_core.models.owners import OWNER_NAME_MAX_LENGTH, Visibility

_NOT_NAME_CHARS = re.compile(r"[^A-Za-z0-9._-]+")
_SEPARATOR_RUNS = re.compile(r"[._-]{2,}")


def is_site_admin(user) -> bool:
    return bool(user is not None and user.is_active and user.is_superuser)


def is_signed_in(user) -> bool:
    return bool(user is not None and user.is_authenticated and user.is_active)


class AccessAdapter:
    """Gitea's rules for visibility and write access."""

    def owner_name_for_user(self, user) -> str:
        """The owner name a new user gets (made unique by the caller): their user name,
        made valid. A host whose users sign in with an email address might use its
        local part instead: `self.valid_owner_name(user.email.partition("@")[0], user)`.
        """
        return self.valid_owner_name(user.get_username(), user)

    def valid_owner_name(self, wanted: str, user) -> str:
        """`wanted` with what owner names may not hold replaced, or `user-<pk>`."""
        name = _NOT_NAME_CHARS.sub("-", wanted)
        name = _SEPARATOR_RUNS.sub("-", name).strip("._-")[:OWNER_NAME_MAX_LENGTH].strip("._-")
        return name or f"user-{user.pk}"

    def role_of(self, user, owner: Owner) -> str | None:
        """The user's membership role in an organisation, or None."""
        if not is_signed_in(user) or not owner.is_org:
            return None
        return (
            Membership.objects.filter(owner=owner, user=user).values_list("role", flat=True).first()
        )

    def can_read(self, user, owner: Owner) -> bool:
        if is_site_admin(user):
            return True
        signed_in = is_signed_in(user)
        if owner.visibility == Visibility.PUBLIC:
            return signed_in or not packages_settings.REQUIRE_SIGNIN_VIEW
        if owner.visibility == Visibility.LIMITED:
            return signed_in
        if not signed_in:
            return False
        if owner.is_org:
            return self.role_of(user, owner) is not None
        return owner.user_id == user.pk

    def readable_owners(self, user) -> QuerySet[Owner]:
        """Every owner `user` may read, as one query (for listings like the catalog)."""
        if is_site_admin(user):
            return Owner.objects.all()
        if not is_signed_in(user):
            if packages_settings.REQUIRE_SIGNIN_VIEW:
                return Owner.objects.none()
            return Owner.objects.filter(visibility=Visibility.PUBLIC)
        return Owner.objects.filter(
            Q(visibility__in=[Visibility.PUBLIC, Visibility.LIMITED])
            | Q(user=user)
            | Q(pk__in=Membership.objects.filter(user=user).values("owner_id"))
        )

    def can_write(self, user, owner: Owner) -> bool:
        if is_site_admin(user):
            return True
        if not is_signed_in(user):
            return False
        if owner.is_org:
            return self.role_of(user, owner) in (Membership.Role.WRITE, Membership.Role.ADMIN)
        return owner.user_id == user.pk

    def can_manage(self, user, owner: Owner) -> bool:
        """May change the owner's settings (cleanup rules): the user owner themself, an
        organisation's admins and site admins, as in Gitea; writers may push, not manage.
        """
        if is_site_admin(user):
            return True
        if not is_signed_in(user):
            return False
        if owner.is_org:
            return self.role_of(user, owner) == Membership.Role.ADMIN
        return owner.user_id == user.pk

    def can_create_org(self, user) -> bool:
        """May create organisations: site admins, and signed-in users unless the site
        keeps that to its admins (`PACKAGES["ALLOW_ORG_CREATION"]`).
        """
        if is_site_admin(user):
            return True
        return is_signed_in(user) and packages_settings.ALLOW_ORG_CREATION


def get_adapter() -> AccessAdapter:
    return packages_settings.ACCESS_ADAPTER()
