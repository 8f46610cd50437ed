"""Whether a caller may do an action on a repository, and how to tell them when not.

The rules are the access adapter's (Gitea's by default), narrowed by the scopes of an
access token and, for a Bearer token, by the access it grants.
"""

from __future__ import annotations

from packages_core import access, lookups
from packages_core.models import Owner
from registry.authentication import Identity, challenge
from registry.bearer import DELETE, PULL, PUSH
from registry.errors import Denied, NameUnknown, Unauthorized
from registry.mirrors.service import mirror_of

# The token action each method needs, and the scope actions a challenge asks for.
METHOD_ACTIONS = {"POST": PUSH, "PUT": PUSH, "PATCH": PUSH, "DELETE": DELETE}
SCOPE_ACTIONS = {PULL: "pull", PUSH: "pull,push", DELETE: "delete"}
DOING = {PULL: "pulling", PUSH: "pushing", DELETE: "deleting"}


def action_of(method: str) -> str:
    return METHOD_ACTIONS.get(method, PULL)


def repository_scope(owner_name: str, image: str, action: str) -> str:
    """The scope a challenge names for `action` on a repository."""
    return f"repository:{owner_name.lower()}/{image}:{SCOPE_ACTIONS[action]}"


def insufficient_scope(request, scope: str, message: str) -> Denied:
    """Allowed, but not with this token: say which scope to get. A 403 with a
    challenge, because oras-py fetches a new token only after a 403.
    """
    return Denied(
        message,
        headers={"WWW-Authenticate": challenge(request, scope, error="insufficient_scope")},
    )


def access_needed(owner_name: str, image: str, action: str) -> list[dict]:
    """The access a request needed, listed as CNCF Distribution lists it in a 401's detail.

    Not decoration: docker's engine (20.10) reads an UNAUTHORIZED error with the default
    message and no detail as a bare code, which it does not know to be final, and retries
    the upload five times over some 50 s before giving up; with a detail it stops at once.
    """
    name = f"{owner_name.lower()}/{image}"
    actions = SCOPE_ACTIONS[action].split(",")
    return [{"Type": "repository", "Name": name, "Action": verb} for verb in actions]


_LOOK_UP = object()


def authorize(
    request, identity: Identity, owner_name: str, image: str, action: str, *, owner=_LOOK_UP
) -> Owner:
    """The owner, if `identity` may do `action` on `owner_name/image`; else the error to
    send. `owner` is the owner by that name (None: there is none) when the caller has
    looked it up already.
    """
    if owner is _LOOK_UP:
        owner = lookups.owner_named(owner_name)
    needed = access.READ if action == PULL else access.WRITE
    by_rules = owner is not None and access.allowed(identity.user, identity.token, owner, needed)
    scope = repository_scope(owner_name, image, action)
    if by_rules and action == PUSH and (mirror := mirror_of(owner)) is not None:
        raise Denied(
            f"{owner.name} is a mirror of {mirror.upstream_url}: its images come from there, "
            "and nobody pushes to it"
        )
    if by_rules and identity.grants(f"{owner.name}/{image}", action):
        return owner
    if by_rules:
        raise insufficient_scope(
            request,
            scope,
            f"the Bearer token does not grant {action} on {owner.name.lower()}/{image}; "
            f"ask the token endpoint for {scope}",
        )
    if owner is not None and (
        refusal := access.token_refusal(identity.user, identity.token, owner, needed, DOING[action])
    ):
        # Not insufficient_scope: no Bearer token can grant more than the access token.
        raise Denied(refusal)
    if identity.is_anonymous:
        detail = access_needed(owner_name, image, action)
        raise Unauthorized(challenge=challenge(request, scope), detail=detail)
    if owner is None or not access.allowed(identity.user, None, owner, access.READ):
        # A private owner looks to those who may not see it as one that does not
        # exist: the same status, code and message, as the pages and the API answer.
        raise NameUnknown(
            f"{identity.user.get_username()} knows no repository {owner_name.lower()}/{image}"
        )
    verb = "pull from" if action == PULL else "push to"
    raise Denied(f"{identity.user.get_username()} may not {verb} {owner.name}/{image}")
