"""URLs of the web pages: one `include()`, at the root or under a prefix.

At the root, include them before the Django admin: every owner page has a `/-/` in its
path, so the owner named `admin` has pages and the admin's own URLs still work.

Image names contain slashes: the image is the shortest run of path components that
start with a letter or digit (so never `-`), followed by a tag or digest.
"""

from django.contrib.auth import views as auth_views
from django.urls import path, re_path
from django.views.generic import RedirectView

from registry.web.views import (
    cleanup,
    home,
    members,
    orgs,
    owners,
    packages,
    settings,
    signin,
    webhooks,
)

app_name = "registry_web"

OWNER = r"(?P<owner>[^/]+)"
IMAGE = r"(?P<image>[A-Za-z0-9][^/]*(?:/[A-Za-z0-9][^/]*)*?)"
REFERENCE = r"(?P<reference>[^/]+)"
CONTAINER = rf"^{OWNER}/-/packages/container/{IMAGE}"

urlpatterns = [
    path("", home.home, name="home"),
    path("login/", signin.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("-/signup", signin.signup, name="signup"),
    path("-/orgs/new", orgs.new_org, name="org_new"),
    path(
        "-/settings",
        RedirectView.as_view(pattern_name="registry_web:settings_tokens"),
        name="settings",
    ),
    path("-/settings/tokens", settings.tokens, name="settings_tokens"),
    path("-/settings/tokens/<int:token_id>/revoke", settings.revoke, name="token_revoke"),
    re_path(rf"{CONTAINER}/-/versions$", packages.package_versions, name="package_versions"),
    re_path(
        rf"{CONTAINER}/{REFERENCE}/-/delete$",
        packages.delete_version,
        name="package_version_delete",
    ),
    re_path(rf"{CONTAINER}/{REFERENCE}$", packages.package_version, name="package_version"),
    re_path(rf"{CONTAINER}$", packages.package, name="package"),
    path("<str:owner>/-/packages", owners.owner_packages, name="owner_packages"),
    path("<str:owner>/-/members", members.owner_members, name="owner_members"),
    path("<str:owner>/-/members/add", members.add_member, name="member_add"),
    path("<str:owner>/-/members/leave", members.leave, name="member_leave"),
    path("<str:owner>/-/members/<int:member_id>/role", members.change_role, name="member_role"),
    path(
        "<str:owner>/-/members/<int:member_id>/remove",
        members.remove_member,
        name="member_remove",
    ),
    path("<str:owner>/-/settings", orgs.owner_settings, name="owner_settings"),
    path("<str:owner>/-/settings/organisation", orgs.org_settings, name="org_settings"),
    path("<str:owner>/-/settings/cleanup", cleanup.rules, name="owner_cleanup"),
    path("<str:owner>/-/settings/cleanup/new", cleanup.new_rule, name="owner_cleanup_new"),
    path(
        "<str:owner>/-/settings/cleanup/<int:rule_id>",
        cleanup.edit_rule,
        name="owner_cleanup_edit",
    ),
    path(
        "<str:owner>/-/settings/cleanup/<int:rule_id>/preview",
        cleanup.rule_preview,
        name="owner_cleanup_preview",
    ),
    path(
        "<str:owner>/-/settings/cleanup/<int:rule_id>/delete",
        cleanup.delete_rule,
        name="owner_cleanup_delete",
    ),
    path("<str:owner>/-/settings/webhooks", webhooks.webhooks, name="owner_webhooks"),
    path("<str:owner>/-/settings/webhooks/new", webhooks.new_webhook, name="owner_webhook_new"),
    path(
        "<str:owner>/-/settings/webhooks/<int:webhook_id>",
        webhooks.webhook,
        name="owner_webhook",
    ),
    path(
        "<str:owner>/-/settings/webhooks/<int:webhook_id>/delete",
        webhooks.delete_webhook,
        name="owner_webhook_delete",
    ),
    path(
        "<str:owner>/-/settings/webhooks/<int:webhook_id>/test",
        webhooks.test_delivery,
        name="owner_webhook_test",
    ),
    path(
        "<str:owner>/-/settings/webhooks/<int:webhook_id>/deliveries/<int:delivery_id>/redeliver",
        webhooks.redeliver,
        name="owner_webhook_redeliver",
    ),
    # Last: a bare /<owner> matches any single path segment.
    path("<str:owner>", owners.owner, name="owner"),
]
