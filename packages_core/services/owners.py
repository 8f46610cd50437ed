"""Creating users' owners, organisations and memberships."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from packages_core.adapter import AccessAdapter, get_adapter
from packages_core.conf import packages_settings
from packages_core.exceptions import InvalidInput, LastAdmin, NameTaken, NotFound
from packages_core.models import Membership, Owner
from packages_core.models.owners import Visibility, validate_owner_name
from packages_core.services.versions import remove_package


def is_reserved(name: str) -> bool:
    """Whether the site keeps `name` from owners (`PACKAGES["RESERVED_OWNER_NAMES"]`)."""
    return name.lower() in {reserved.lower() for reserved in packages_settings.RESERVED_OWNER_NAMES}


def check_owner_name(name: str) -> None:
    """Raise InvalidInput unless `name` may name a new owner, NameTaken if it is used."""
    try:
        validate_owner_name(name)
    except ValidationError as exc:
        raise InvalidInput(f"{name!r} is not a valid name: {exc.messages[0]}") from exc
    if len(name) > Owner._meta.get_field("name").max_length:
        raise InvalidInput(f"{name!r} is longer than 40 characters.")
    if is_reserved(name):
        raise InvalidInput(f"{name!r} is reserved.")
    if Owner.objects.named(name).exists():
        raise NameTaken(f"The name {name!r} is already taken.")


def check_visibility(visibility: str) -> str:
    if visibility not in Visibility.values:
        raise InvalidInput(
            f"Unknown visibility {visibility!r}; use one of {', '.join(Visibility.values)}."
        )
    return visibility


def get_user(username: str):
    User = get_user_model()
    try:
        return User.objects.get(**{User.USERNAME_FIELD: username})
    except User.DoesNotExist:
        raise NotFound(f"No user named {username!r}.") from None


def get_owner(name: str) -> Owner:
    owner = Owner.objects.named(name).first()
    if owner is None:
        raise NotFound(f"No user or organisation named {name!r}.")
    return owner


def ensure_user_owner(user) -> Owner:
    """The user's owner, made on first need from the adapter's name for the user.

    When that name is taken (by another owner, or reserved), a numbered variant is
    used, so making a user never fails because of its owner.
    """
    owner = Owner.objects.filter(user=user).first()
    if owner is not None:
        return owner
    base = get_adapter().owner_name_for_user(user)
    stem = base[:36].rstrip("._-") or "user"
    candidates = [base] + [f"{stem}-{n}" for n in range(2, 100)]
    for name in candidates:
        if is_reserved(name) or Owner.objects.named(name).exists():
            continue
        try:
            with transaction.atomic():
                return Owner.objects.create(name=name, kind=Owner.Kind.USER, user=user)
        except IntegrityError:
            # The name went to someone else meanwhile, or a concurrent call made
            # this user's owner: take that one, or try the next name.
            owner = Owner.objects.filter(user=user).first()
            if owner is not None:
                return owner
    raise NameTaken(f"No free owner name for user {user.pk} starting with {base!r}.")


def create_user(
    username: str,
    *,
    email: str = "",
    password: str | None = None,
    is_admin: bool = False,
    visibility: str = Visibility.PUBLIC,
):
    """A new user and their owner; admins are Django superusers.

    `username` fills the user model's USERNAME_FIELD, whatever it is. Where the owner
    is named after it (a user name, and the default adapter's naming), the names must
    be equal: a name no owner may have, or one taken, is refused. Otherwise (a host's
    email-login user model, or an adapter with its own naming) the adapter names the
    owner, with a number added if that name is taken, as for any new user.
    """
    User = get_user_model()
    email_field = User.get_email_field_name()
    signs_in_with_email = email_field == User.USERNAME_FIELD
    named_after_username = not signs_in_with_email and (
        type(get_adapter()).owner_name_for_user is AccessAdapter.owner_name_for_user
    )
    if named_after_username:
        check_owner_name(username)
    check_visibility(visibility)
    if User.objects.filter(**{f"{User.USERNAME_FIELD}__iexact": username}).exists():
        raise NameTaken(f"A user named {username!r} already exists.")
    fields = {User.USERNAME_FIELD: username, "password": password}
    if email and not signs_in_with_email:
        fields[email_field] = email
    with transaction.atomic():
        manager = User._default_manager
        user = (manager.create_superuser if is_admin else manager.create_user)(**fields)
        owner = ensure_user_owner(user)
        if named_after_username and owner.name != username:
            raise NameTaken(f"The name {username!r} is already taken.")
        if owner.visibility != visibility:
            owner.visibility = visibility
            owner.save(update_fields=["visibility"])
    return user


def create_org(
    name: str, *, owner_user, visibility: str = Visibility.PUBLIC, description: str = ""
) -> Owner:
    """A new organisation, with `owner_user` as its first admin member.

    Who may create one is the caller's question (`access.can_create_org`): the
    operator's commands may always.
    """
    check_owner_name(name)
    check_visibility(visibility)
    with transaction.atomic():
        org = Owner.objects.create(
            name=name, kind=Owner.Kind.ORG, visibility=visibility, description=description
        )
        Membership.objects.create(owner=org, user=owner_user, role=Membership.Role.ADMIN)
    return org


def update_org(org: Owner, *, visibility: str, description: str) -> Owner:
    """Change an organisation's visibility and description."""
    _check_is_org(org)
    check_visibility(visibility)
    org.visibility = visibility
    org.description = description
    # Saving the owner tells pulls that what they cached of it is stale (signals.py).
    org.save(update_fields=["visibility", "description"])
    return org


def add_member(org: Owner, user, role: str) -> Membership:
    """Make `user` a member of `org` with `role`; InvalidInput if they already are one
    (their role is changed with `set_membership`, not by adding them again).
    """
    _check_is_org(org)
    if Membership.objects.filter(owner=org, user=user).exists():
        raise InvalidInput(f"{_name(user)} is already a member of {org.name}.")
    return set_membership(org, user, role)


def set_membership(org: Owner, user, role: str) -> Membership:
    """Give `user` `role` in `org`, adding or changing the membership.

    Demoting the organisation's last admin is refused (LastAdmin): nobody but a site
    admin could manage it again.
    """
    _check_is_org(org)
    if role not in Membership.Role.values:
        raise InvalidInput(
            f"Unknown role {role!r}; use one of {', '.join(Membership.Role.values)}."
        )
    with transaction.atomic():
        _lock_memberships(org)
        if role != Membership.Role.ADMIN:
            _keep_an_admin(org, user, f"{_name(user)} is the last admin of {org.name}")
        membership, _ = Membership.objects.update_or_create(
            owner=org, user=user, defaults={"role": role}
        )
    return membership


def remove_membership(org: Owner, user) -> None:
    """Take `user` out of `org` (an admin removing a member, or a member leaving).

    NotFound if they are not a member; LastAdmin if they are its last admin.
    """
    _check_is_org(org)
    with transaction.atomic():
        _lock_memberships(org)
        if not Membership.objects.filter(owner=org, user=user).exists():
            raise NotFound(f"{_name(user)} is not a member of {org.name}.")
        _keep_an_admin(org, user, f"{_name(user)} is the last admin of {org.name}")
        Membership.objects.filter(owner=org, user=user).delete()


def _check_is_org(owner: Owner) -> None:
    if not owner.is_org:
        raise InvalidInput(f"{owner.name!r} is a user, not an organisation.")


def _name(user) -> str:
    return repr(user.get_username())


def _lock_memberships(org: Owner) -> None:
    """Lock the organisation's row: membership changes of one organisation take turns,
    so two admins demoting each other at once cannot both pass the last-admin check.
    No-key: pushes that add packages under it (a key-share lock) need not wait.
    """
    Owner.objects.select_for_update(no_key=True).filter(pk=org.pk).exists()


def _keep_an_admin(org: Owner, user, problem: str) -> None:
    """Raise LastAdmin if `user` is an admin of `org` and no other admin is left once
    they stop being one. An organisation that has no admin (one made in the Django
    admin without members) may still gain and lose other members.
    """
    admins = Membership.objects.filter(owner=org, role=Membership.Role.ADMIN)
    if admins.filter(user=user).exists() and not admins.exclude(user=user).exists():
        raise LastAdmin(f"{problem}; make another member an admin first.")


def remove_owner(owner: Owner) -> None:
    """Delete an owner with its packages (through the service that drops their properties)."""
    with transaction.atomic():
        for package in owner.packages.all():
            remove_package(package)
        owner.delete()
