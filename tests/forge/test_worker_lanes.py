"""Which lane of forge's gunicorn worker a request goes to: quick, or transfer."""

import pytest

from forge.gunicorn_worker import is_transfer
from registry.mirrors.service import create_mirror, mirror_names, mirror_of

MIRRORS = frozenset({b"hub"})


@pytest.mark.parametrize(
    ("head", "transfer"),
    [
        (b"GET /v2/alice/app/manifests/v1 HTTP/1.1", False),
        (b"HEAD /v2/alice/app/blobs/sha256:ab HTTP/1.1", False),
        (b"GET /v2/alice/app/blobs/sha256:ab HTTP/1.1", True),
        (b"PATCH /v2/alice/app/blobs/uploads/x HTTP/1.1", True),
        # A mirror's pulls may wait on its upstream: never in the quick lane.
        (b"GET /v2/hub/library/alpine/manifests/3 HTTP/1.1", True),
        (b"HEAD /v2/HUB/library/alpine/manifests/3 HTTP/1.1", True),
        (b"GET /v2/hubby/app/manifests/3 HTTP/1.1", False),
        (b"GET /hub/-/packages HTTP/1.1", False),
    ],
)
def test_lanes(head, transfer):
    assert is_transfer(head, MIRRORS) is transfer


@pytest.mark.django_db
def test_a_process_learns_the_mirrors_names_as_it_looks_them_up():
    mirror = create_mirror("Hub", "https://registry-1.docker.io")

    assert mirror_of(mirror.owner) is not None

    assert b"hub" in mirror_names()
