"""Signing up on the web, where the site allows it (`REGISTRY["ALLOW_SIGNUP"]`)."""

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from tests.web_helpers import page

pytestmark = pytest.mark.django_db


def url(name: str) -> str:
    return reverse(f"registry_web:{name}")


@pytest.fixture
def alice_signed_in(client, alice):
    client.force_login(alice)
    return client


def signup_data(**fields) -> dict:
    data = {
        "username": "erin",
        "email": "erin@example.com",
        "password1": "a long enough passphrase",
        "password2": "a long enough passphrase",
    }
    return {**data, **fields}


@pytest.fixture
def signup_on(settings):
    settings.REGISTRY = {**settings.REGISTRY, "ALLOW_SIGNUP": True}


def test_signup_is_off_by_default(client, db):
    assert page(client, "signup").status_code == 404
    assert client.post(url("signup"), signup_data()).status_code == 404
    assert url("signup") not in page(client, "login").text
    assert not get_user_model().objects.filter(username="erin").exists()


def test_the_login_page_links_to_signup_when_on(client, db, signup_on):
    assert url("signup") in page(client, "login").text
    assert page(client, "signup").status_code == 200


def test_signing_up_makes_the_user_and_owner_and_signs_in(client, db, signup_on):
    response = client.post(url("signup"), signup_data())

    assert response.status_code == 302
    assert response.url == url("home")
    user = get_user_model().objects.get(username="erin")
    assert (user.email, user.is_superuser, user.package_owner.name) == (
        "erin@example.com",
        False,
        "erin",
    )
    assert page(client, "home").context["user"] == user


def test_signup_refuses_differing_passwords(client, db, signup_on):
    response = client.post(url("signup"), signup_data(password2="something else"))

    assert response.status_code == 200
    assert "The two passwords differ." in response.text
    assert not get_user_model().objects.filter(username="erin").exists()


def test_signup_applies_the_sites_password_rules(client, db, signup_on):
    response = client.post(url("signup"), signup_data(password1="erin", password2="erin"))

    assert response.status_code == 200
    assert response.context["form"].errors["password1"]
    assert not get_user_model().objects.filter(username="erin").exists()


@pytest.mark.parametrize(
    ("username", "problem"),
    [("Alice", "already taken"), ("no spaces", "not a valid name"), ("v2", "is reserved")],
)
def test_signup_refuses_names_owners_may_not_have(client, alice, signup_on, username, problem):
    response = client.post(url("signup"), signup_data(username=username))

    assert response.status_code == 200
    assert problem in response.text
    assert get_user_model().objects.count() == 1


def test_signed_in_users_are_sent_home_from_signup(alice_signed_in, signup_on):
    assert page(alice_signed_in, "signup").url == url("home")
