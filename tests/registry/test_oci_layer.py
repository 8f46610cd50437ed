"""The OCI layer stands alone, /v2 needs no DRF, and each OCI error has the spec's answer."""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import registry.oci
from registry.errors import RegistryError, from_domain, render_error
from registry.oci import errors as oci

ROOT = Path(__file__).resolve().parents[2]
OCI_MODULES = sorted(
    f"registry.oci.{module.name}" for module in pkgutil.iter_modules(registry.oci.__path__)
)
PROTOCOL_MODULES = [
    "registry.authentication",
    "registry.bearer",
    "registry.urls",
    "registry.views",
    "registry.views.base",
    "registry.views.content",
    "registry.views.listings",
    "registry.views.operations",
    "registry.views.tokens",
    "registry.views.uploads",
    "registry.wsgi",
]


def imported_in_a_fresh_process(code: str) -> set[str]:
    """The top-level packages in sys.modules after `code` runs in a new interpreter
    started from the checkout, with no Django settings named.
    """
    script = (
        code
        + "\nimport json, sys\nprint(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))"
    )
    environment = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return set(json.loads(result.stdout.splitlines()[-1]))


# Purity


def test_the_oci_layer_has_modules_to_check():
    assert {"registry.oci.digests", "registry.oci.manifests", "registry.oci.errors"} <= set(
        OCI_MODULES
    )


def test_importing_the_oci_layer_imports_no_django_and_no_drf():
    imports = "\n".join(f"import {module}" for module in ["registry.oci", *OCI_MODULES])
    loaded = imported_in_a_fresh_process(imports)
    assert "registry" in loaded
    assert not loaded & {"django", "rest_framework", "rest_framework_simplejwt", "packages_core"}


def test_the_v2_protocol_and_its_token_endpoint_import_nothing_of_drf():
    """A host that installs only packages_core and registry (no DRF in INSTALLED_APPS,
    as forge's settings have) loads no DRF module for /v2.
    """
    setup = """
import django
from django.conf import settings
settings.configure(
    INSTALLED_APPS=[
        "django.contrib.contenttypes",
        "django.contrib.auth",
        "packages_core",
        "registry",
    ],
    DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
    SECRET_KEY="a key for an import check, long enough for anything",
    ROOT_URLCONF="registry.urls",
    USE_TZ=True,
)
django.setup()
"""
    imports = "\n".join(f"import {module}" for module in PROTOCOL_MODULES)
    loaded = imported_in_a_fresh_process(setup + imports)
    assert "django" in loaded
    assert not loaded & {"rest_framework", "rest_framework_simplejwt"}


# The one mapping from OCI errors to the spec's codes and statuses

EXPECTED = [
    (oci.InvalidDigest, "DIGEST_INVALID", 400),
    (oci.DigestMismatch, "DIGEST_INVALID", 400),
    (oci.InvalidName, "NAME_INVALID", 400),
    (oci.InvalidReference, "MANIFEST_INVALID", 400),
    (oci.InvalidManifest, "MANIFEST_INVALID", 400),
    (oci.ManifestTooLarge, "MANIFEST_INVALID", 413),
    (oci.UnsupportedManifest, "UNSUPPORTED", 501),
    (oci.SizeMismatch, "SIZE_INVALID", 400),
    (oci.RepositoryNotFound, "NAME_UNKNOWN", 404),
    (oci.BlobNotFound, "BLOB_UNKNOWN", 404),
    (oci.ManifestNotFound, "MANIFEST_UNKNOWN", 404),
    (oci.ManifestChildNotFound, "MANIFEST_BLOB_UNKNOWN", 404),
    (oci.ManifestReferenced, "DENIED", 409),
]


def every_subclass(kind: type) -> set[type]:
    found = set()
    for sub in kind.__subclasses__():
        found |= {sub, *every_subclass(sub)}
    return found


@pytest.mark.parametrize(("kind", "code", "status"), EXPECTED)
def test_each_oci_error_is_answered_with_its_code_and_status(kind, code, status):
    error = from_domain(kind("what went wrong", detail={"digest": "sha256:abc"}))

    assert isinstance(error, RegistryError)
    assert (error.code, error.status) == (code, status)
    assert error.message == "what went wrong"
    assert error.detail == {"digest": "sha256:abc"}


def test_every_oci_error_has_an_answer_in_the_table():
    # Those of registry.oci.errors: a test may define its own.
    defined = {kind for kind in every_subclass(oci.OciError) if kind.__module__ == oci.__name__}
    assert defined == {kind for kind, _, _ in EXPECTED}


def test_an_oci_error_without_a_message_keeps_its_own():
    error = from_domain(oci.BlobNotFound())

    assert error.message == oci.BlobNotFound.message
    assert error.detail is None


def test_an_oci_error_of_a_kind_not_in_the_table_is_a_500():
    class Novel(oci.OciError):
        pass

    error = from_domain(Novel("new"))

    assert (error.code, error.status) == ("UNKNOWN", 500)


def test_a_mapped_error_renders_as_the_spec_writes_errors():
    response = render_error(from_domain(oci.ManifestTooLarge("too big", detail={"size": 9})))

    assert response.status_code == 413
    assert json.loads(response.content) == {
        "errors": [{"code": "MANIFEST_INVALID", "message": "too big", "detail": {"size": 9}}]
    }
