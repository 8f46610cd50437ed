"""The operator commands: createuser, createorg, addmember, createtoken, ensureadmin."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from packages_core.adapter import AccessAdapter
from packages_core.models import AccessToken, Membership, Owner
from packages_core.services.tokens import authenticate_token

pytestmark = pytest.mark.django_db


def run(capsys, *argv):
    """Run a command in-process; return (exit code, stdout, error message).

    `call_command` rather than `execute_from_command_line`: the latter closes every
    database connection when it ends, which would end the test's transaction.
    """
    try:
        call_command(*argv)
        code, message = 0, ""
    except CommandError as exc:
        code, message = exc.returncode, str(exc)
    out, _ = capsys.readouterr()
    return code, out, message


def assert_fails_with(capsys, argv, message):
    code, out, err = run(capsys, *argv)
    assert code == 1
    assert out == ""
    assert "\n" not in err.strip(), f"not one line: {err!r}"
    assert message in err


def test_a_failing_command_exits_1_with_one_line_on_stderr(tmp_path):
    """The whole CLI path, in a child process with its own throwaway database."""
    env = {**os.environ, "FORGE_DATA_DIR": str(tmp_path)}
    env.pop("DATABASE_URL", None)
    manage = [sys.executable, str(Path(__file__).resolve().parents[2] / "manage.py")]
    subprocess.run([*manage, "migrate", "-v0"], env=env, check=True)
    result = subprocess.run(
        [*manage, "createorg", "acme", "--owner", "nobody"], env=env, capture_output=True, text=True
    )
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr == "CommandError: No user named 'nobody'.\n"


def test_createuser_makes_a_user_with_an_owner_of_its_visibility(capsys):
    code, out, _ = run(
        capsys,
        "createuser",
        "carol",
        "--email",
        "c@example.com",
        "--password",
        "pw",
        "--visibility",
        "limited",
    )
    assert code == 0
    assert "carol" in out
    user = get_user_model().objects.get(username="carol")
    assert user.email == "c@example.com"
    assert user.check_password("pw")
    assert not user.is_superuser
    owner = Owner.objects.get(user=user)
    assert (owner.name, owner.kind, owner.visibility) == ("carol", "user", "limited")


def test_createuser_admin_makes_a_superuser(capsys):
    code, _, _ = run(capsys, "createuser", "boss", "--password", "pw", "--admin")
    assert code == 0
    user = get_user_model().objects.get(username="boss")
    assert user.is_superuser
    assert user.is_staff


def test_createuser_refuses_a_taken_name_in_any_case(capsys, alice):
    assert_fails_with(capsys, ["createuser", "ALICE", "--password", "pw"], "already")
    assert get_user_model().objects.count() == 1


def test_createuser_refuses_a_name_taken_by_an_organisation(capsys, org):
    assert_fails_with(capsys, ["createuser", "acme", "--password", "pw"], "already taken")


@pytest.mark.parametrize("name", ["a b", "_lead", "trail.", "dots..twice", "x" * 41, "static"])
def test_createuser_refuses_invalid_names(capsys, name):
    assert_fails_with(capsys, ["createuser", name, "--password", "pw"], repr(name))
    assert not get_user_model().objects.exists()


def test_createuser_refuses_an_unknown_visibility(capsys):
    assert_fails_with(
        capsys, ["createuser", "dan", "--password", "pw", "--visibility", "secret"], "visibility"
    )
    assert not get_user_model().objects.exists()


def test_createorg_makes_an_org_administered_by_its_owner(capsys, alice):
    code, _out, _ = run(capsys, "createorg", "acme", "--owner", "alice", "--visibility", "private")
    assert code == 0
    org = Owner.objects.get(name="acme")
    assert (org.kind, org.visibility, org.user) == ("org", "private", None)
    assert Membership.objects.get(owner=org).role == "admin"


def test_createorg_refuses_an_unknown_owner(capsys):
    assert_fails_with(capsys, ["createorg", "acme", "--owner", "nobody"], "No user named")
    assert not Owner.objects.filter(kind="org").exists()


def test_createorg_refuses_a_duplicate_name(capsys, org):
    assert_fails_with(capsys, ["createorg", "Acme", "--owner", "alice"], "already taken")


def test_addmember_adds_then_changes_a_role(capsys, org, bob):
    assert run(capsys, "addmember", "acme", "bob", "--role", "read")[0] == 0
    assert Membership.objects.get(owner=org, user=bob).role == "read"
    assert run(capsys, "addmember", "ACME", "bob", "--role", "write")[0] == 0
    assert Membership.objects.get(owner=org, user=bob).role == "write"
    assert Membership.objects.filter(owner=org, user=bob).count() == 1


def test_addmember_says_in_a_sentence_what_bob_may_now_do(capsys, org, bob):
    assert run(capsys, "addmember", "acme", "bob", "--role", "read")[1] == (
        "bob is now a member of acme with read access.\n"
    )
    assert run(capsys, "addmember", "acme", "bob", "--role", "write")[1] == (
        "bob is still a member of acme, now with write access instead of read.\n"
    )
    assert run(capsys, "addmember", "acme", "bob", "--role", "write")[1] == (
        "bob is a member of acme with write access already.\n"
    )


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["addmember", "acme", "bob", "--role", "god"], "Unknown role 'god'"),
        (["addmember", "nowhere", "bob", "--role", "read"], "No user or organisation"),
        (["addmember", "acme", "nobody", "--role", "read"], "No user named"),
        (["addmember", "bob", "alice", "--role", "read"], "not an organisation"),
    ],
)
def test_addmember_refuses_bad_input(capsys, org, bob, argv, message):
    assert_fails_with(capsys, argv, message)
    assert not Membership.objects.filter(user=bob).exists()


def test_createtoken_prints_only_a_working_token(capsys, alice):
    code, out, _err = run(
        capsys,
        "createtoken",
        "alice",
        "--name",
        "ci",
        "--scope",
        "read:package,write:package",
        "--expires-days",
        "7",
    )
    assert code == 0
    secret = out.strip()
    assert out == secret + "\n"
    token = authenticate_token(secret)
    assert token is not None
    assert token.user == alice
    assert sorted(token.scopes) == ["read:package", "write:package"]
    assert token.expires_at is not None


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["createtoken", "nobody", "--name", "ci", "--scope", "read:package"], "No user named"),
        (["createtoken", "alice", "--name", "ci", "--scope", "admin"], "Unknown scope 'admin'"),
        (["createtoken", "alice", "--name", "ci", "--scope", ","], "at least one scope"),
        (
            [
                "createtoken",
                "alice",
                "--name",
                "ci",
                "--scope",
                "read:package",
                "--expires-days",
                "0",
            ],
            "positive",
        ),
    ],
)
def test_createtoken_refuses_bad_input(capsys, alice, argv, message):
    assert_fails_with(capsys, argv, message)
    assert not AccessToken.objects.exists()


def test_createtoken_refuses_a_duplicate_name(capsys, alice):
    assert run(capsys, "createtoken", "alice", "--name", "ci", "--scope", "read:package")[0] == 0
    assert_fails_with(
        capsys, ["createtoken", "alice", "--name", "ci", "--scope", "read:package"], "already"
    )
    assert AccessToken.objects.count() == 1


def test_ensureadmin_on_an_empty_database_prints_a_generated_password_once(capsys, monkeypatch):
    monkeypatch.delenv("FORGE_ADMIN_PASSWORD", raising=False)
    call_command("ensureadmin")
    out = capsys.readouterr().out
    password = out.split("password: ")[1].split()[0]
    admin = get_user_model().objects.get(username="admin")
    assert admin.is_superuser
    assert admin.check_password(password)
    call_command("ensureadmin")
    assert capsys.readouterr().out == (
        "The site admin 'admin' exists already; its password is unchanged "
        "(`manage.py ensureadmin --reset-password` sets a new one).\n"
    )
    assert get_user_model().objects.count() == 1
    assert get_user_model().objects.get(username="admin").check_password(password)


def test_ensureadmin_takes_the_password_from_the_environment(capsys, monkeypatch):
    monkeypatch.setenv("FORGE_ADMIN_PASSWORD", "from-env-pw")
    call_command("ensureadmin")
    assert "from-env-pw" not in capsys.readouterr().out
    assert get_user_model().objects.get(username="admin").check_password("from-env-pw")


def test_ensureadmin_leaves_a_database_with_users_alone_and_says_so(capsys, alice):
    call_command("ensureadmin")
    assert not get_user_model().objects.filter(username="admin").exists()
    assert "no site admin 'admin' was made; nothing changed" in capsys.readouterr().out


def test_ensureadmin_with_the_password_variable_leaves_an_existing_admin_alone(capsys, monkeypatch):
    monkeypatch.setenv("FORGE_ADMIN_PASSWORD", "first-pw")
    call_command("ensureadmin")
    monkeypatch.setenv("FORGE_ADMIN_PASSWORD", "second-pw")
    capsys.readouterr()

    call_command("ensureadmin")

    assert "its password is unchanged" in capsys.readouterr().out
    assert get_user_model().objects.get(username="admin").check_password("first-pw")


def test_ensureadmin_reset_password_prints_a_new_generated_password(capsys, monkeypatch):
    monkeypatch.delenv("FORGE_ADMIN_PASSWORD", raising=False)
    call_command("ensureadmin")
    old = capsys.readouterr().out.split("password: ")[1].split()[0]

    call_command("ensureadmin", "--reset-password")

    out = capsys.readouterr().out
    assert out.startswith("Reset the password of the site admin 'admin' with password: ")
    new = out.split("password: ")[1].split()[0]
    admin = get_user_model().objects.get(username="admin")
    assert new != old
    assert admin.check_password(new)


def test_ensureadmin_reset_password_takes_the_variable_and_lets_admin_in_again(capsys, monkeypatch):
    monkeypatch.delenv("FORGE_ADMIN_PASSWORD", raising=False)
    call_command("ensureadmin")
    get_user_model().objects.filter(username="admin").update(is_active=False, is_staff=False)
    monkeypatch.setenv("FORGE_ADMIN_PASSWORD", "recovered-pw")
    capsys.readouterr()

    call_command("ensureadmin", "--reset-password")

    out = capsys.readouterr().out
    assert out == "Reset the password of the site admin 'admin' (FORGE_ADMIN_PASSWORD).\n"
    admin = get_user_model().objects.get(username="admin")
    assert admin.check_password("recovered-pw")
    assert (admin.is_active, admin.is_staff, admin.is_superuser) == (True, True, True)


def test_ensureadmin_reset_password_without_an_admin_fails_with_one_line(capsys, alice):
    assert_fails_with(capsys, ["ensureadmin", "--reset-password"], "manage.py changepassword NAME")
    assert not get_user_model().objects.filter(username="admin").exists()


class LocalPartAdapter(AccessAdapter):
    """Owners named after the local part of the email, as a host might."""

    def owner_name_for_user(self, user) -> str:
        return self.valid_owner_name(user.email.partition("@")[0], user)


def test_createuser_lets_a_host_adapter_name_the_owner(capsys, settings):
    settings.PACKAGES = {**settings.PACKAGES, "ACCESS_ADAPTER": f"{__name__}.LocalPartAdapter"}

    code, out, _ = run(
        capsys, "createuser", "carol", "--email", "carol.x@example.com", "--password", "pw"
    )

    assert code == 0
    assert "owner 'carol.x'" in out
    assert Owner.objects.get(user__username="carol").name == "carol.x"


def test_addmember_refuses_to_demote_the_last_admin(capsys, org):
    assert_fails_with(capsys, ["addmember", "acme", "alice", "--role", "read"], "last admin")
    assert Membership.objects.get(owner=org).role == "admin"
