"""Property-based fuzzing of what parses client input: manifests, digests, names, ranges.

Whatever a client sends, each parser either accepts it or raises our own error (a
RegistryError, or an error of the OCI layer, which the views answer with the spec's
JSON), never anything else: anything else would be a 500. The runs are bounded (few
examples, derandomized, no example database) so the suite stays fast and CI sees the
same examples every time.
"""

from __future__ import annotations

import json

from django.test import RequestFactory
from hypothesis import given, settings
from hypothesis import strategies as st

from registry import serving
from registry.errors import (
    PaginationNumberInvalid,
    RangeNotSatisfiable,
    RegistryError,
    UploadRangeInvalid,
)
from registry.images import check_owner_name, is_valid_repository
from registry.oci.digests import ALGORITHMS, Digest, looks_like_digest, parse_digest
from registry.oci.errors import (
    InvalidDigest,
    InvalidManifest,
    InvalidName,
    OciError,
    UnsupportedManifest,
)
from registry.oci.manifests import EMPTY_DIGEST, ParsedManifest, parse_manifest
from registry.oci.media_types import (
    DOCKER_MANIFEST,
    DOCKER_MANIFEST_LIST,
    DOCKER_SCHEMA1_MANIFEST,
    OCI_EMPTY,
    OCI_INDEX,
    OCI_MANIFEST,
)
from registry.oci.names import check_image_name, is_valid_tag
from registry.views.base import MAX_PAGINATION_NUMBER, pagination_number
from registry.views.uploads import parse_content_range


def fuzz(examples: int):
    """Hypothesis settings for one property: bounded, repeatable, writing no files."""
    return settings(max_examples=examples, deadline=1000, derandomize=True, database=None)


def outcome(parse, *args):
    """What `parse` returns, or the RegistryError or OciError it raises (anything else fails)."""
    try:
        return parse(*args)
    except (RegistryError, OciError) as error:
        return error


# JSON of any shape, and manifest-shaped documents with good and bad fields mixed.

SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
)
JSON = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=12,
)
MEDIA_TYPES = st.sampled_from(
    [
        OCI_MANIFEST,
        OCI_INDEX,
        DOCKER_MANIFEST,
        DOCKER_MANIFEST_LIST,
        DOCKER_SCHEMA1_MANIFEST,
        OCI_EMPTY,
    ]
) | st.text(max_size=30)
DIGESTS = st.sampled_from(
    [EMPTY_DIGEST, "sha256:" + "a" * 64, "sha512:" + "b" * 128, "sha256+b64u:abc", "sha256:\x00"]
) | st.text(max_size=70)
DESCRIPTOR = st.fixed_dictionaries(
    {
        "mediaType": MEDIA_TYPES | JSON,
        "digest": DIGESTS | JSON,
        "size": st.integers(-5, 2**64) | JSON,
    },
    optional={
        "annotations": st.dictionaries(st.text(max_size=8), st.text(max_size=8)) | JSON,
        "artifactType": MEDIA_TYPES | JSON,
        "platform": st.fixed_dictionaries(
            {"os": st.text(max_size=5), "architecture": st.text(max_size=5)}
        )
        | JSON,
        "urls": st.lists(st.text(max_size=10), max_size=2) | JSON,
    },
)
MANIFEST_DOCUMENT = st.fixed_dictionaries(
    {},
    optional={
        "schemaVersion": st.sampled_from([2, 2, 2, 1, "2", 2.0, True]) | JSON,
        "mediaType": MEDIA_TYPES | JSON,
        "config": DESCRIPTOR | JSON,
        "layers": st.lists(DESCRIPTOR, max_size=3) | JSON,
        "manifests": st.lists(DESCRIPTOR, max_size=3) | JSON,
        "subject": DESCRIPTOR | JSON,
        "artifactType": MEDIA_TYPES | JSON,
        "annotations": st.dictionaries(st.text(max_size=8), st.text(max_size=8)) | JSON,
    },
)
CONTENT_TYPES = st.none() | MEDIA_TYPES | st.just("application/json; charset=utf-8")


@fuzz(100)
@given(document=MANIFEST_DOCUMENT, content_type=CONTENT_TYPES)
def test_a_manifest_shaped_document_parses_or_is_a_registry_error(document, content_type):
    result = outcome(parse_manifest, json.dumps(document).encode(), content_type)

    assert isinstance(result, (ParsedManifest, InvalidManifest, UnsupportedManifest))
    if isinstance(result, ParsedManifest):
        assert type(document["schemaVersion"]) is int
        assert document["schemaVersion"] == 2


@fuzz(100)
@given(body=st.binary(max_size=200) | JSON.map(lambda value: json.dumps(value).encode()))
def test_any_body_parses_or_is_a_registry_error(body):
    result = outcome(parse_manifest, body, OCI_MANIFEST)

    assert isinstance(result, (ParsedManifest, InvalidManifest, UnsupportedManifest))


# Digests, names and ranges are built from pieces: cheaper than from_regex, and the
# pieces mix what the grammars allow with what they do not.


def joined(*parts):
    return st.tuples(*parts).map("".join)


def pieces(*choices: str, max_size: int = 8):
    return st.lists(st.sampled_from(choices), max_size=max_size).map("".join)


HEX = st.text(alphabet="0123456789abcdefABCDEF=_-+/\x00", max_size=130)
DIGEST_LIKE = joined(
    st.sampled_from(["sha256", "sha512", "sha256+b64u", "md5", "SHA256", "", "a..b"]),
    st.sampled_from([":", "", "::"]),
    HEX | st.sampled_from(["a" * 64, "b" * 128]),
) | st.text(max_size=40)


@fuzz(150)
@given(value=DIGEST_LIKE)
def test_a_digest_parses_or_is_digest_invalid(value):
    result = outcome(parse_digest, value)

    assert isinstance(result, (Digest, InvalidDigest))
    assert looks_like_digest(value) in (True, False)
    if isinstance(result, Digest):
        assert str(result) == value
        assert len(result.hex) == ALGORITHMS[result.algorithm]


NAME_PIECES = ("a", "b1", "web", "x-y", "a.b", "c__d", "-", "/", ".", "_", "A", "\x00", "+", "é")


@fuzz(150)
@given(
    owner=pieces(*NAME_PIECES) | st.text(max_size=45),
    image=pieces(*NAME_PIECES, max_size=12) | st.text(max_size=20),
    tag=pieces("v1", "latest", ".", "-", "_", "A", "\x00", ":", max_size=40),
)
def test_names_are_accepted_or_name_invalid(owner, image, tag):
    owner_result, image_result = outcome(check_owner_name, owner), outcome(check_image_name, image)

    assert owner_result == owner or isinstance(owner_result, InvalidName)
    assert image_result == image or isinstance(image_result, InvalidName)
    accepted = owner_result == owner and image_result == image
    if "/" not in owner:
        # Otherwise the name reads as another owner and image: "a/b" + "c" is "a" + "b/c".
        assert is_valid_repository(f"{owner}/{image}") is accepted
    assert is_valid_tag(tag) in (True, False)


# Ranges: an upload chunk's Content-Range, a download's Range, a listing's n

NUMBER_LIKE = (
    st.integers(min_value=0, max_value=10**22).map(str)
    | st.text(alphabet=st.characters(categories=["Nd", "No"]), max_size=4)
    | st.sampled_from(["", "-1", "9" * 5000, "1_0", " 1"])
)
CONTENT_RANGE_LIKE = joined(
    st.sampled_from(["", "bytes ", "bytes=", "BYTES ", "bytes", "byte "]),
    NUMBER_LIKE,
    st.sampled_from(["-", "", "--", " - "]),
    NUMBER_LIKE,
    st.sampled_from(["", "/*", "/10", "/", "/x"]),
) | st.text(max_size=30)


@fuzz(150)
@given(header=CONTENT_RANGE_LIKE)
def test_a_content_range_parses_or_is_upload_range_invalid(header):
    result = outcome(parse_content_range, header)

    if result is None:
        assert not header.strip()
    elif isinstance(result, tuple):
        start, end = result
        assert 0 <= start <= end < 10**19
    else:
        assert isinstance(result, UploadRangeInvalid)
        assert result.status == 416


@fuzz(150)
@given(
    header=joined(st.just("bytes="), NUMBER_LIKE, st.sampled_from(["-", ""]), NUMBER_LIKE)
    | st.text(max_size=30),
    size=st.integers(min_value=0, max_value=2**63),
)
def test_a_download_range_is_within_the_blob_or_range_not_satisfiable(header, size):
    result = outcome(serving.parse_range, header, size)

    if isinstance(result, tuple):
        start, end = result
        assert 0 <= start <= end < size
    else:
        assert result is None or isinstance(result, RangeNotSatisfiable)


@fuzz(100)
@given(n=st.integers(min_value=-(2**70), max_value=2**70).map(str) | st.text(max_size=25))
def test_a_listing_n_is_a_count_or_pagination_number_invalid(n):
    request = RequestFactory().get("/v2/_catalog", {"n": n})

    result = outcome(pagination_number, request)

    assert (
        result is None
        or (type(result) is int and 0 <= result <= MAX_PAGINATION_NUMBER)
        or isinstance(result, PaginationNumberInvalid)
    )
