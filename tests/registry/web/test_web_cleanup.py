"""Keeping storage in check on the web: an owner's usage in its header, its cleanup rules'
settings page (who may see it, adding, changing, deleting, previewing), and the admin's.
"""

from datetime import timedelta

import pytest
from django.contrib.messages import get_messages
from django.db import connection
from django.template.defaultfilters import filesizeformat
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from packages_core.models import CleanupRule, OwnerQuota, PackageVersion
from packages_core.models.owners import Visibility
from packages_core.services import quotas
from tests.registry_helpers import ALICE, push_image
from tests.web_helpers import CAROL, page, push_distinct, push_tags, set_visibility

pytestmark = pytest.mark.django_db


def usage_line(response) -> str:
    return response.context["usage"]


def rule_data(**fields) -> dict:
    """The form's fields for a rule that keeps the newest version, as a browser posts them."""
    data = {
        "type": "container",
        "enabled": "on",
        "keep_count": "1",
        "keep_pattern": "",
        "remove_days": "0",
        "remove_pattern": "",
    }
    data.update(fields)
    return {name: value for name, value in data.items() if value is not None}


def names(versions) -> list[str]:
    return sorted(f"{version.package.name}/{version.version}" for version in versions)


@pytest.fixture
def alice_signed_in(client, alice):
    client.force_login(alice)
    return client


@pytest.fixture
def three_tags(client, alice):
    """alice/web:latest, then 1.0, 2.0 and 3.0 (the same image as latest) in that order."""
    push_distinct(client, "alice/web", "latest", 2)
    for n, tag in enumerate(["1.0", "2.0", "3.0"]):
        push_distinct(client, "alice/web", tag, n)


@pytest.fixture
def alice_rule(alice):
    return CleanupRule.objects.create(owner=alice.package_owner, type="container", keep_count=1)


def version_names(owner) -> list[str]:
    rows = PackageVersion.objects.filter(package__owner=owner, is_internal=False)
    return sorted(f"{row.package.name}/{row.version}" for row in rows.select_related("package"))


# Usage in the owner header


def test_owner_header_shows_usage_to_the_owner(alice_signed_in, alice):
    push_image(alice_signed_in, "alice/web", "1.0", layers=(b"x" * 2048,))
    used = quotas.usage(alice.package_owner)

    response = page(alice_signed_in, "owner_packages", "alice")

    expected = f"1 version (unlimited) · {filesizeformat(used.bytes)} (unlimited)"
    assert usage_line(response) == expected
    assert f"Storage used: {expected}" in response.text


def test_usage_is_worked_out_again_only_after_a_change(alice_signed_in, alice):
    assert usage_line(page(alice_signed_in, "owner_packages", "alice")).startswith("0 version")
    with CaptureQueriesContext(connection) as unchanged:
        page(alice_signed_in, "owner_packages", "alice")
    assert not [q for q in unchanged.captured_queries if "packages_core_packageblob" in q["sql"]]

    push_image(alice_signed_in, "alice/web", "1.0", layers=(b"x" * 2048,))

    used = quotas.usage(alice.package_owner)
    line = usage_line(page(alice_signed_in, "owner_packages", "alice"))
    assert line == f"1 version (unlimited) · {filesizeformat(used.bytes)} (unlimited)"
    assert used.bytes > 2048


def test_usage_is_shown_against_the_site_limits(alice_signed_in, settings):
    settings.PACKAGES = {"QUOTA_OWNER_VERSIONS": 100, "QUOTA_OWNER_BYTES": 10 * 1024**3}
    push_tags(alice_signed_in, "alice/web", ["1.0", "2.0"])

    line = usage_line(page(alice_signed_in, "owner_packages", "alice"))

    assert line.startswith("2 of 100 versions · ")
    assert line.endswith(f" of {filesizeformat(10 * 1024**3)}")


def test_usage_is_shown_against_the_owners_own_limits(alice_signed_in, alice):
    OwnerQuota.objects.create(owner=alice.package_owner, max_versions=1, max_bytes=-1)

    line = usage_line(page(alice_signed_in, "owner_packages", "alice"))

    assert line == f"0 of 1 version · {filesizeformat(0)} (unlimited)"


def test_usage_is_shown_to_organisation_writers(client, org, bob, reader_of):
    reader_of(bob, "write")
    client.force_login(bob)

    assert "Storage used:" in page(client, "owner_packages", "acme").text


@pytest.mark.parametrize("visitor", ["anonymous", "other user", "org reader"])
def test_usage_is_hidden_from_those_who_may_not_write(client, org, bob, reader_of, visitor):
    push_tags(client, "acme/app", ["v1"], auth=ALICE)
    if visitor == "org reader":
        reader_of(bob, "read")
    if visitor != "anonymous":
        client.force_login(bob)

    for name in ("owner_packages", "owner_members"):
        response = page(client, name, "acme")
        assert response.status_code == 200
        assert usage_line(response) == ""
        assert "Storage used" not in response.text


def test_owner_page_queries_do_not_grow_with_images_for_writers(alice_signed_in, alice):
    def count_queries():
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        with CaptureQueriesContext(connection) as queries:
            assert page(alice_signed_in, "owner_packages", "alice").status_code == 200
        return len(queries)

    push_tags(alice_signed_in, "alice/img0", ["v1"])
    few = count_queries()
    for n in range(1, 8):
        push_tags(alice_signed_in, f"alice/img{n}", ["v1", "v2"])

    assert count_queries() == few


# Who may see the cleanup settings


def settings_status(client, owner: str) -> int:
    return page(client, "owner_cleanup", owner).status_code


def test_user_owner_may_manage_their_cleanup_rules(alice_signed_in):
    response = page(alice_signed_in, "owner_cleanup", "alice")

    assert response.status_code == 200
    assert (
        reverse("registry_web:owner_cleanup", args=["alice"])
        in page(alice_signed_in, "owner_packages", "alice").text
    )


def test_owner_settings_address_leads_to_the_cleanup_rules(alice_signed_in):
    response = page(alice_signed_in, "owner_settings", "alice")

    assert response.status_code == 302
    assert response.url == reverse("registry_web:owner_cleanup", args=["alice"])


def test_other_users_get_403_and_no_settings_tab(client, alice, bob):
    client.force_login(bob)

    assert settings_status(client, "alice") == 403
    assert (
        reverse("registry_web:owner_cleanup", args=["alice"])
        not in page(client, "owner_packages", "alice").text
    )


def test_anonymous_visitors_are_sent_to_sign_in(client, alice):
    response = page(client, "owner_cleanup", "alice")

    assert response.status_code == 302
    assert response.url.startswith(reverse("registry_web:login"))


def test_owners_one_may_not_read_are_404(client, carol, bob):
    assert settings_status(client, "carol") == 404
    client.force_login(bob)
    assert settings_status(client, "carol") == 404
    assert settings_status(client, "nobody") == 404


def test_organisation_admins_may_manage_its_rules(alice_signed_in, org):
    assert settings_status(alice_signed_in, "acme") == 200


@pytest.mark.parametrize("role", ["write", "read"])
def test_organisation_writers_and_readers_get_403(client, org, bob, reader_of, role):
    reader_of(bob, role)
    client.force_login(bob)

    assert settings_status(client, "acme") == 403
    assert (
        reverse("registry_web:owner_cleanup", args=["acme"])
        not in page(client, "owner_packages", "acme").text
    )


def test_private_organisation_settings_are_404_to_outsiders(client, org, bob):
    set_visibility(org, Visibility.PRIVATE)
    client.force_login(bob)

    assert settings_status(client, "acme") == 404


def test_site_admins_may_manage_anyones_rules(client, carol, org, site_admin):
    client.force_login(site_admin)

    assert settings_status(client, "carol") == 200
    assert settings_status(client, "acme") == 200


def test_every_cleanup_page_refuses_those_who_may_not_manage(client, alice_rule, bob):
    client.force_login(bob)
    pk = alice_rule.pk

    assert page(client, "owner_cleanup_new", "alice").status_code == 403
    assert page(client, "owner_cleanup_edit", "alice", pk).status_code == 403
    assert page(client, "owner_cleanup_preview", "alice", pk).status_code == 403
    url = reverse("registry_web:owner_cleanup_edit", args=["alice", pk])
    assert client.post(url, rule_data(keep_count="9")).status_code == 403
    delete = reverse("registry_web:owner_cleanup_delete", args=["alice", pk])
    assert client.post(delete).status_code == 403
    alice_rule.refresh_from_db()
    assert alice_rule.keep_count == 1


# Listing, adding, changing and deleting rules


def test_no_rules_says_so_and_offers_to_add_one(alice_signed_in):
    response = page(alice_signed_in, "owner_cleanup", "alice")

    assert "alice has no cleanup rules" in response.text
    assert reverse("registry_web:owner_cleanup_new", args=["alice"]) in response.text


def test_rules_are_listed_and_no_new_one_is_offered_once_every_type_has_one(
    alice_signed_in, alice_rule
):
    # The other registered type (tests/generic_files) gets its rule too.
    CleanupRule.objects.create(owner=alice_rule.owner, type="generic", keep_count=1)
    response = page(alice_signed_in, "owner_cleanup", "alice")

    assert response.context["rules"][0] == alice_rule
    assert (
        reverse("registry_web:owner_cleanup_edit", args=["alice", alice_rule.pk]) in response.text
    )
    assert reverse("registry_web:owner_cleanup_new", args=["alice"]) not in response.text


def test_the_type_is_chosen_from_the_registered_package_types(alice_signed_in):
    form = page(alice_signed_in, "owner_cleanup_new", "alice").context["form"]

    assert list(form.fields["type"].choices) == [
        ("container", "Container image"),
        ("generic", "Generic files"),  # tests/generic_files
    ]


def test_adding_a_rule_saves_it_and_goes_back_to_the_list(alice_signed_in, alice):
    url = reverse("registry_web:owner_cleanup_new", args=["alice"])

    response = alice_signed_in.post(
        url, rule_data(keep_count="5", keep_pattern=r"v\d+", remove_days="30", match_full_name="on")
    )

    assert response.status_code == 302
    assert response.url == reverse("registry_web:owner_cleanup", args=["alice"])
    rule = CleanupRule.objects.get(owner=alice.package_owner)
    assert (rule.type, rule.enabled, rule.keep_count, rule.keep_pattern) == (
        "container",
        True,
        5,
        r"v\d+",
    )
    assert (rule.remove_days, rule.match_full_name) == (30, True)
    assert [str(m) for m in get_messages(response.wsgi_request)] == [
        "Added the cleanup rule for container packages."
    ]


def test_a_rule_on_pulls_is_saved_and_listed(alice_signed_in, alice):
    url = reverse("registry_web:owner_cleanup_new", args=["alice"])

    response = alice_signed_in.post(url, rule_data(keep_count="0", remove_unpulled_days="30"))

    assert response.status_code == 302
    assert CleanupRule.objects.get(owner=alice.package_owner).remove_unpulled_days == 30
    listed = page(alice_signed_in, "owner_cleanup", "alice").text
    assert "not pulled for 30 days" in listed


def test_a_rule_left_without_days_unpulled_ignores_pulls(alice_signed_in, alice):
    url = reverse("registry_web:owner_cleanup_new", args=["alice"])

    alice_signed_in.post(url, rule_data(remove_unpulled_days=""))

    assert CleanupRule.objects.get(owner=alice.package_owner).remove_unpulled_days is None
    assert "not pulled for" not in page(alice_signed_in, "owner_cleanup", "alice").text


def test_the_form_offers_the_days_unpulled_with_its_label(alice_signed_in):
    response = page(alice_signed_in, "owner_cleanup_new", "alice")

    assert "Remove versions not pulled for (days)" in response.text
    assert 'name="remove_unpulled_days"' in response.text


@pytest.mark.parametrize("days", ["0", "-1", "36501", "thirty"])
def test_days_unpulled_that_mean_nothing_are_refused(alice_signed_in, days):
    response = alice_signed_in.post(
        reverse("registry_web:owner_cleanup_new", args=["alice"]),
        rule_data(remove_unpulled_days=days),
    )

    assert response.status_code == 200
    assert "remove_unpulled_days" in response.context["form"].errors
    assert not CleanupRule.objects.exists()


def test_an_organisation_admin_adds_a_rule_to_the_organisation(alice_signed_in, org):
    alice_signed_in.post(reverse("registry_web:owner_cleanup_new", args=["acme"]), rule_data())

    assert CleanupRule.objects.get().owner == org


def test_changing_a_rule_saves_the_new_values_but_not_a_new_type(alice_signed_in, alice_rule):
    url = reverse("registry_web:owner_cleanup_edit", args=["alice", alice_rule.pk])

    response = alice_signed_in.post(
        url, rule_data(type="npm", enabled=None, keep_count="3", remove_pattern=r".*-rc\d+")
    )

    assert response.status_code == 302
    alice_rule.refresh_from_db()
    assert (alice_rule.type, alice_rule.enabled, alice_rule.keep_count) == ("container", False, 3)
    assert alice_rule.remove_pattern == r".*-rc\d+"


def test_deleting_a_rule_removes_it(alice_signed_in, alice_rule):
    response = alice_signed_in.post(
        reverse("registry_web:owner_cleanup_delete", args=["alice", alice_rule.pk])
    )

    assert response.status_code == 302
    assert not CleanupRule.objects.exists()


def test_deleting_needs_a_post(alice_signed_in, alice_rule):
    url = reverse("registry_web:owner_cleanup_delete", args=["alice", alice_rule.pk])

    assert alice_signed_in.get(url).status_code == 405
    assert CleanupRule.objects.exists()


def test_another_owners_rule_is_404_under_this_owner(client, alice_rule, bob):
    client.force_login(bob)
    pk = alice_rule.pk

    assert page(client, "owner_cleanup_edit", "bob", pk).status_code == 404
    assert (
        client.post(reverse("registry_web:owner_cleanup_delete", args=["bob", pk])).status_code
        == 404
    )
    assert CleanupRule.objects.filter(pk=pk).exists()


@pytest.mark.parametrize("field", ["keep_pattern", "remove_pattern"])
def test_an_invalid_regular_expression_is_refused_and_says_why(alice_signed_in, field):
    url = reverse("registry_web:owner_cleanup_new", args=["alice"])

    response = alice_signed_in.post(url, rule_data(**{field: "v(1"}))

    assert response.status_code == 200
    [error] = response.context["form"].errors[field]
    assert error.startswith("Not a valid regular expression: missing )")
    assert "Not a valid regular expression" in response.text
    assert not CleanupRule.objects.exists()


def test_a_second_rule_for_a_type_is_refused(alice_signed_in, alice_rule):
    url = reverse("registry_web:owner_cleanup_new", args=["alice"])

    response = alice_signed_in.post(url, rule_data(keep_count="7"))

    assert response.status_code == 200
    assert response.context["form"].errors["type"] == [
        "alice already has a cleanup rule for container packages; edit that one instead."
    ]
    assert CleanupRule.objects.count() == 1


def test_a_type_no_app_registers_is_refused(alice_signed_in):
    response = alice_signed_in.post(
        reverse("registry_web:owner_cleanup_new", args=["alice"]), rule_data(type="npm")
    )

    assert "type" in response.context["form"].errors
    assert not CleanupRule.objects.exists()


def test_an_age_beyond_a_hundred_years_is_refused(alice_signed_in):
    response = alice_signed_in.post(
        reverse("registry_web:owner_cleanup_new", args=["alice"]),
        rule_data(remove_days="999999999"),
    )

    assert "remove_days" in response.context["form"].errors
    assert not CleanupRule.objects.exists()


def test_the_rule_forms_are_posted_with_csrf(alice, alice_rule):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)

    assert (
        client.post(
            reverse("registry_web:owner_cleanup_new", args=["alice"]), rule_data()
        ).status_code
        == 403
    )
    response = client.get(reverse("registry_web:owner_cleanup", args=["alice"]))
    assert "csrfmiddlewaretoken" in response.content.decode()


# Previews


def preview(client, owner: str = "alice", rule: CleanupRule | None = None, **fields):
    """Press "Preview" on the new rule form (or on the rule's edit form)."""
    if rule is None:
        url = reverse("registry_web:owner_cleanup_new", args=[owner])
    else:
        url = reverse("registry_web:owner_cleanup_edit", args=[owner, rule.pk])
    response = client.post(url, {**rule_data(**fields), "preview": "1"})
    assert response.status_code == 200, response.content
    return response


def test_preview_lists_what_the_rule_as_typed_would_remove(alice_signed_in, alice, three_tags):
    response = preview(alice_signed_in, keep_count="1")

    shown = response.context["preview"]
    # The newest (3.0) stays by count, latest always does.
    assert names(shown["versions"]) == ["web/1.0", "web/2.0"]
    assert shown["total"] == 2
    assert "<strong>1.0</strong>" in response.text
    assert "<strong>2.0</strong>" in response.text
    assert "2 versions would be removed if cleanup ran now" in response.text


def test_preview_neither_saves_the_rule_nor_removes_anything(alice_signed_in, alice, three_tags):
    before = version_names(alice.package_owner)

    preview(alice_signed_in, keep_count="0")

    assert not CleanupRule.objects.exists()
    assert version_names(alice.package_owner) == before


def test_preview_follows_the_patterns_and_the_full_name(alice_signed_in, three_tags):
    def shown(**fields):
        return names(
            preview(alice_signed_in, keep_count="0", **fields).context["preview"]["versions"]
        )

    assert shown(remove_pattern=r"[12]\.0") == ["web/1.0", "web/2.0"]
    assert shown(keep_pattern=r"1\..*") == ["web/2.0", "web/3.0"]
    assert shown(remove_pattern=r"web/1\.0") == []
    assert shown(remove_pattern=r"WEB/1\.0", match_full_name="on") == ["web/1.0"]


def test_preview_follows_the_age(alice_signed_in, alice, three_tags):
    old = timezone.now() - timedelta(days=40)
    PackageVersion.objects.filter(version__in=["1.0", "latest"]).update(created=old)

    response = preview(alice_signed_in, keep_count="0", remove_days="30")

    assert names(response.context["preview"]["versions"]) == ["web/1.0"]


def test_preview_follows_the_last_pulls(alice_signed_in, alice, three_tags):
    now = timezone.now()
    PackageVersion.objects.update(created=now - timedelta(days=90))
    PackageVersion.objects.filter(version="1.0").update(last_pulled=now - timedelta(days=40))
    PackageVersion.objects.filter(version="2.0").update(last_pulled=now - timedelta(days=2))

    response = preview(alice_signed_in, keep_count="0", remove_unpulled_days="30")

    # 3.0 was never pulled, and pushed 90 days ago; latest always stays.
    assert names(response.context["preview"]["versions"]) == ["web/1.0", "web/3.0"]
    assert "<th>Last pulled</th>" in response.text
    assert ">never</span>" in response.text


def test_preview_of_an_edited_rule_leaves_the_saved_rule_alone(
    alice_signed_in, alice, alice_rule, three_tags
):
    before = version_names(alice.package_owner)

    response = preview(alice_signed_in, rule=alice_rule, keep_count="2")

    assert names(response.context["preview"]["versions"]) == ["web/1.0"]
    alice_rule.refresh_from_db()
    assert alice_rule.keep_count == 1
    assert version_names(alice.package_owner) == before


def test_preview_of_an_invalid_rule_shows_the_errors_instead(alice_signed_in, three_tags):
    url = reverse("registry_web:owner_cleanup_new", args=["alice"])

    response = alice_signed_in.post(url, {**rule_data(keep_pattern="("), "preview": "1"})

    assert response.context["preview"] is None
    assert "keep_pattern" in response.context["form"].errors


def test_preview_only_looks_at_the_owners_packages(alice_signed_in, alice, org, three_tags):
    push_tags(alice_signed_in, "acme/app", ["v1", "v2"], auth=ALICE)

    response = preview(alice_signed_in, owner="acme", keep_count="0")

    assert names(response.context["preview"]["versions"]) == ["app/v1", "app/v2"]


def test_saved_rule_preview_lists_what_it_would_remove(
    alice_signed_in, alice, alice_rule, three_tags
):
    before = version_names(alice.package_owner)

    response = page(alice_signed_in, "owner_cleanup_preview", "alice", alice_rule.pk)

    assert response.status_code == 200
    assert names(response.context["preview"]["versions"]) == ["web/1.0", "web/2.0"]
    assert version_names(alice.package_owner) == before
    assert (
        reverse("registry_web:owner_cleanup_preview", args=["alice", alice_rule.pk])
        in page(alice_signed_in, "owner_cleanup", "alice").text
    )


def test_saved_rule_preview_works_for_a_disabled_rule_and_says_so(
    alice_signed_in, alice_rule, three_tags
):
    alice_rule.enabled = False
    alice_rule.save()

    response = page(alice_signed_in, "owner_cleanup_preview", "alice", alice_rule.pk)

    assert response.context["preview"]["total"] == 2
    assert "The rule is disabled" in response.text


def test_preview_says_when_nothing_would_go(alice_signed_in, alice_rule, three_tags):
    alice_rule.keep_count = 10
    alice_rule.save()

    response = page(alice_signed_in, "owner_cleanup_preview", "alice", alice_rule.pk)

    assert response.context["preview"]["total"] == 0
    assert "the rule would remove no version now" in response.text


def test_preview_lists_at_most_a_hundred_and_counts_the_rest(alice_signed_in, alice, alice_rule):
    from packages_core.services import versions

    package = versions.get_or_create_package(alice.package_owner, "container", "many")
    for n in range(103):
        versions.create_version(package, f"v{n}")

    shown = page(alice_signed_in, "owner_cleanup_preview", "alice", alice_rule.pk).context[
        "preview"
    ]

    assert (len(shown["versions"]), shown["total"], shown["more"]) == (100, 102, 2)


def test_preview_of_a_private_owner_needs_its_owner(client, carol, bob):
    push_tags(client, "carol/secret", ["1", "2"], auth=CAROL)
    rule = CleanupRule.objects.create(owner=carol.package_owner, type="container")
    client.force_login(bob)

    assert page(client, "owner_cleanup_preview", "carol", rule.pk).status_code == 404
    client.force_login(carol)
    assert page(client, "owner_cleanup_preview", "carol", rule.pk).context["preview"]["total"] == 2


# The admin


@pytest.fixture
def admin_client(client, site_admin):
    client.force_login(site_admin)
    return client


def admin_change(rule) -> str:
    return reverse("admin:packages_core_cleanuprule_change", args=[rule.pk])


def test_admin_rule_page_shows_what_the_rule_would_remove_now(admin_client, alice_rule, three_tags):
    text = admin_client.get(admin_change(alice_rule)).content.decode()

    assert "Would remove now" in text
    assert "2 version(s):" in text
    assert "web 1.0" in text
    assert "web 2.0" in text
    assert "web 3.0" not in text
    v1 = PackageVersion.objects.get(version="1.0")
    assert reverse("admin:packages_core_packageversion_change", args=[v1.pk]) in text


def test_admin_rule_page_lists_fifty_and_counts_the_rest(admin_client, alice, alice_rule):
    from packages_core.services import versions

    package = versions.get_or_create_package(alice.package_owner, "container", "many")
    for n in range(53):
        versions.create_version(package, f"v{n}")

    text = admin_client.get(admin_change(alice_rule)).content.decode()

    assert "52 version(s):" in text
    assert text.count("<li><a href=") == 50
    assert "and 2 more" in text


def test_admin_rule_page_says_when_nothing_would_go(admin_client, alice_rule):
    response = admin_client.get(admin_change(alice_rule))

    assert response.status_code == 200
    assert "nothing" in response.content.decode()


def test_admin_rule_type_is_a_choice_of_the_registered_types(admin_client, alice_rule):
    form = admin_client.get(admin_change(alice_rule)).context["adminform"].form

    assert list(form.fields["type"].choices) == [
        ("container", "Container image"),
        ("generic", "Generic files"),  # tests/generic_files
    ]


def test_admin_keeps_a_saved_rule_with_a_type_no_app_registers_editable(admin_client, alice):
    rule = CleanupRule.objects.create(owner=alice.package_owner, type="npm")
    data = {
        "owner": alice.package_owner.pk,
        "type": "npm",
        "enabled": "on",
        "keep_count": "4",
        "keep_pattern": "",
        "remove_days": "0",
        "remove_pattern": "",
    }

    response = admin_client.post(admin_change(rule), data)

    assert response.status_code == 302
    rule.refresh_from_db()
    assert rule.keep_count == 4


def test_admin_saves_the_days_unpulled_and_lists_them(admin_client, alice_rule):
    data = {
        "owner": alice_rule.owner.pk,
        "type": "container",
        "enabled": "on",
        "keep_count": "1",
        "remove_days": "0",
        "remove_unpulled_days": "30",
    }

    response = admin_client.post(admin_change(alice_rule), data)

    assert response.status_code == 302
    alice_rule.refresh_from_db()
    assert alice_rule.remove_unpulled_days == 30
    listing = admin_client.get(reverse("admin:packages_core_cleanuprule_changelist"))
    assert "column-remove_unpulled_days" in listing.content.decode()


def test_admin_refuses_zero_days_unpulled(admin_client, alice_rule):
    data = {"owner": alice_rule.owner.pk, "type": "container", "keep_count": "1"}

    response = admin_client.post(
        admin_change(alice_rule), {**data, "remove_days": "0", "remove_unpulled_days": "0"}
    )

    assert response.status_code == 200
    assert "remove_unpulled_days" in response.context["adminform"].form.errors


def test_admin_refuses_a_type_no_app_registers_for_a_new_rule(admin_client, alice):
    data = {
        "owner": alice.package_owner.pk,
        "type": "npm",
        "keep_count": "0",
        "remove_days": "0",
    }

    response = admin_client.post(reverse("admin:packages_core_cleanuprule_add"), data)

    assert response.status_code == 200
    assert "type" in response.context["adminform"].form.errors
    assert not CleanupRule.objects.exists()
