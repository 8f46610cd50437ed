"""The /v2 endpoints: each parses the request, calls a service and builds the response."""

from __future__ import annotations

import contextlib
import json
from urllib.parse import urlencode

from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.utils.decorators import method_decorator
from django.views import View
from django.views.decorators.csrf import csrf_exempt

from packages_core.adapter import get_adapter
from packages_core.conf import packages_settings
from packages_core.models import BlobUpload, Owner
from packages_core.services import uploads
from registry import images, serving, tokens
from registry.authentication import ANONYMOUS, Identity, authenticate, challenge, service_name
from registry.conf import registry_settings
from registry.digests import Digest, parse_digest
from registry.errors import (
    BlobUnknown,
    BlobUploadUnknown,
    Denied,
    DigestInvalid,
    ManifestInvalid,
    NameUnknown,
    RegistryError,
    RouteUnknown,
    Unauthorized,
    Unsupported,
    UploadRangeInvalid,
    render_error,
)
from registry.names import check_image_name
from registry.request_body import RequestBody

API_VERSION_HEADER = "Docker-Distribution-Api-Version"
API_VERSION = "registry/2.0"
INDEX_MEDIA_TYPE = "application/vnd.oci.image.index.v1+json"
# The token action each method needs, and the scope actions a challenge asks for.
METHOD_ACTIONS = {"POST": "push", "PUT": "push", "PATCH": "push", "DELETE": "delete"}
ACTION_SCOPES = {"pull": "pull", "push": "pull,push", "delete": "delete"}


def action_of(request) -> str:
    return METHOD_ACTIONS.get(request.method, "pull")


@method_decorator(csrf_exempt, name="dispatch")
class RegistryView(View):
    """Authenticates, resolves the repository, checks access, renders RegistryErrors."""

    # Whether the path names a repository (`<owner>/<image>`).
    repository = True
    identity: Identity = ANONYMOUS
    owner: Owner
    image: str

    def dispatch(self, request, *args, **kwargs):
        try:
            self.scope = self.challenge_scope(request, kwargs)
            self.identity = authenticate(request, scope=self.scope)
            if self.repository:
                self.resolve(request, kwargs.pop("owner"), kwargs.pop("image"))
            response = super().dispatch(request, *args, **kwargs)
        except uploads.UploadOffsetMismatch as error:
            response = render_error(
                UploadRangeInvalid(str(error), headers={"Range": byte_range(error.expected)})
            )
        except RegistryError as error:
            response = render_error(error, head=request.method == "HEAD")
        response[API_VERSION_HEADER] = API_VERSION
        return response

    def challenge_scope(self, request, kwargs) -> str:
        """The token scope a client needs for this request, named in challenges."""
        if not self.repository:
            return ""
        repository = f"{kwargs['owner'].lower()}/{kwargs['image']}"
        return f"repository:{repository}:{ACTION_SCOPES[action_of(request)]}"

    def resolve(self, request, owner_name: str, image: str) -> None:
        """Find the owner and check the caller may do what the method asks there."""
        self.image = check_image_name(image)
        owner = Owner.objects.named(owner_name).first()
        action = action_of(request)
        adapter = get_adapter()
        identity = self.identity
        by_rules = owner is not None and (
            adapter.can_read(identity.user, owner) and identity.may_read_packages()
            if action == tokens.PULL
            else adapter.can_write(identity.user, owner) and identity.may_write_packages()
        )
        if by_rules and identity.grants(f"{owner.name}/{self.image}", action):
            self.owner = owner
            return
        if by_rules:
            # Allowed, but not with this token: say which scope to get. (A 403 with a
            # challenge, because oras-py fetches a new token only after a 403.)
            raise Denied(
                f"the token does not grant {action} on {owner.name.lower()}/{self.image}",
                headers={
                    "WWW-Authenticate": challenge(request, self.scope, error="insufficient_scope")
                },
            )
        if identity.is_anonymous:
            raise Unauthorized(challenge=challenge(request, self.scope))
        if owner is None:
            raise NameUnknown(f"no user or organisation named {owner_name!r}")
        verb = "pull from" if action == tokens.PULL else "push to"
        raise Denied(f"{identity.user.get_username()} may not {verb} {owner.name}/{image}")

    def require_site_access(self, request) -> None:
        """Anonymous callers may look around unless the site requires signing in."""
        if self.identity.is_anonymous and packages_settings.REQUIRE_SIGNIN_VIEW:
            raise Unauthorized(challenge=challenge(request, self.scope))

    @property
    def creator(self):
        """The user to record as having made something; None when anonymous."""
        return None if self.identity.is_anonymous else self.identity.user

    def http_method_not_allowed(self, request, *args, **kwargs):
        raise Unsupported(f"{request.method} is not supported here")

    def repository_url(self, suffix: str) -> str:
        return f"/v2/{self.owner.name.lower()}/{self.image}/{suffix}"


class PingView(RegistryView):
    """`GET /v2/`: 200 with credentials (a Bearer token, even an anonymous one), else
    401 with the challenge that starts the token flow.
    """

    repository = False

    def get(self, request):
        if self.identity.is_anonymous and not self.identity.is_bearer:
            raise Unauthorized(challenge=challenge(request))
        self.require_site_access(request)
        return HttpResponse(b"{}", content_type="application/json")


class CatalogView(RegistryView):
    repository = False
    PAGE_SIZE = 100

    def challenge_scope(self, request, kwargs) -> str:
        return "registry:catalog:*"

    def get(self, request):
        self.require_site_access(request)
        if not self.identity.catalog:
            raise Denied(
                "the token does not grant the catalog",
                headers={
                    "WWW-Authenticate": challenge(request, self.scope, error="insufficient_scope")
                },
            )
        n = query_int(request, "n")
        n = self.PAGE_SIZE if n is None or n <= 0 or n > self.PAGE_SIZE else n
        names = images.catalog(self.identity.user, n=n, last=request.GET.get("last", "").strip())
        response = json_response({"repositories": names})
        if len(names) == n:
            query = urlencode({"n": n, "last": names[-1]})
            response["Link"] = f'</v2/_catalog?{query}>; rel="next"'
        return response


class UploadStartView(RegistryView):
    """`POST .../blobs/uploads/`: a cross-repo mount, a monolithic upload, or a new session."""

    def post(self, request):
        mount, source = request.GET.get("mount", "").strip(), request.GET.get("from", "").strip()
        if mount and source:
            # A mount that cannot be done, for whatever reason, is a new session.
            blob = None
            if self.identity.grants(source, tokens.PULL) and self.identity.may_read_packages():
                with contextlib.suppress(DigestInvalid):
                    blob = images.readable_blob_elsewhere(
                        self.identity.user, parse_digest(mount), source
                    )
            if blob is not None:
                images.stage_blob(self.owner, self.image, blob, creator=self.creator)
                return blob_created(self, mount)
        digest = request.GET.get("digest", "").strip()
        if digest:
            stored = serving.store_verified(RequestBody(request), parse_digest(digest))
            images.stage_blob(self.owner, self.image, stored.blob, creator=self.creator)
            return blob_created(self, digest)
        upload = uploads.start_upload(self.owner, self.image, creator=self.creator)
        return upload_response(self, upload, status=202)


class UploadView(RegistryView):
    """One upload session: status, append a chunk, finish, cancel."""

    def find_upload(self, upload_id: str) -> BlobUpload:
        try:
            return BlobUpload.objects.get(pk=upload_id, owner=self.owner, image=self.image)
        except (BlobUpload.DoesNotExist, ValidationError, ValueError):
            raise BlobUploadUnknown(detail={"uuid": upload_id}) from None

    def get(self, request, upload_id):
        return upload_response(self, self.find_upload(upload_id), status=204)

    def patch(self, request, upload_id):
        upload = self.find_upload(upload_id)
        offset = parse_content_range(request.META.get("HTTP_CONTENT_RANGE", ""))
        body = RequestBody(request)
        upload = uploads.append_to_upload(upload, body, offset=offset, expected_bytes=body.length)
        return upload_response(self, upload, status=202)

    def put(self, request, upload_id):
        upload = self.find_upload(upload_id)
        raw_digest = request.GET.get("digest", "").strip()
        if not raw_digest:
            raise DigestInvalid("the digest query parameter is required to finish an upload")
        digest = parse_digest(raw_digest)
        body = RequestBody(request)
        if not body.is_empty:
            offset = parse_content_range(request.META.get("HTTP_CONTENT_RANGE", ""))
            upload = uploads.append_to_upload(
                upload, body, offset=offset, expected_bytes=body.length
            )
        serving.check_digest(uploads.upload_digests(upload), digest)
        stored = uploads.complete_upload(upload)
        images.stage_blob(self.owner, self.image, stored.blob, creator=self.creator)
        return blob_created(self, str(digest))

    def delete(self, request, upload_id):
        uploads.discard_upload(self.find_upload(upload_id))
        return HttpResponse(status=204)


class BlobView(RegistryView):
    def head(self, request, digest):
        blob = images.find_blob(self.owner, self.image, parse_blob_digest(digest))
        return serving.blob_head(blob, digest)

    def get(self, request, digest):
        blob = images.find_blob(self.owner, self.image, parse_blob_digest(digest))
        return serving.blob_response(request, blob, digest)

    def delete(self, request, digest):
        images.delete_blob(self.owner, self.image, parse_blob_digest(digest))
        return HttpResponse(status=202)


class ManifestView(RegistryView):
    def head(self, request, reference):
        found = images.find_manifest(self.owner, self.image, reference)
        return serving.manifest_response(found, reference, head=True)

    def get(self, request, reference):
        found = images.find_manifest(self.owner, self.image, reference)
        response = serving.manifest_response(found, reference, head=False)
        images.count_download(found.version)
        return response

    def put(self, request, reference):
        body = RequestBody(request).read_all(registry_settings.MAX_MANIFEST_SIZE)
        if len(body) > registry_settings.MAX_MANIFEST_SIZE:
            raise ManifestInvalid(
                f"manifest exceeds the maximum size of {registry_settings.MAX_MANIFEST_SIZE} bytes",
                status=413,
            )
        pushed = images.put_manifest(
            self.owner,
            self.image,
            reference,
            body,
            request.META.get("CONTENT_TYPE"),
            creator=self.creator,
        )
        response = HttpResponse(status=201)
        response["Location"] = self.repository_url(f"manifests/{pushed.digest}")
        response["Docker-Content-Digest"] = pushed.digest
        if pushed.subject:
            response["OCI-Subject"] = pushed.subject
        return response

    def delete(self, request, reference):
        images.delete_manifest(self.owner, self.image, reference)
        return HttpResponse(status=202)


class TagListView(RegistryView):
    def get(self, request):
        package = images.require_package(self.owner, self.image)
        n = query_int(request, "n")
        if n is not None and n < 0:
            n = None
        tags = images.list_tags(package, n=n, last=request.GET.get("last", "").strip())
        response = json_response({"name": f"{self.owner.name.lower()}/{self.image}", "tags": tags})
        if n and len(tags) == n:
            query = urlencode({"n": n, "last": tags[-1]})
            response["Link"] = f'<{self.repository_url("tags/list")}?{query}>; rel="next"'
        return response


class ReferrersView(RegistryView):
    def get(self, request, digest):
        artifact_type = request.GET.get("artifactType", "").strip()
        descriptors = images.referrers(
            self.owner, self.image, parse_digest(digest), artifact_type=artifact_type
        )
        index = {"schemaVersion": 2, "mediaType": INDEX_MEDIA_TYPE, "manifests": descriptors}
        response = json_response(index, content_type=INDEX_MEDIA_TYPE)
        if artifact_type:
            response["OCI-Filters-Applied"] = "artifactType"
        return response


class UnknownRouteView(RegistryView):
    """Any other /v2 path: a JSON 404 with the API header, like every /v2 answer."""

    repository = False

    def dispatch(self, request, *args, **kwargs):
        return super().dispatch(request)

    def get(self, request):
        raise RouteUnknown(f"no /v2 endpoint at {request.path}")

    head = post = put = patch = delete = get


class TokenView(RegistryView):
    """`GET /v2/token`: Basic credentials (or none) in, a Bearer token out."""

    repository = False

    def get(self, request):
        self.require_site_access(request)
        identity = self.identity
        requested = tokens.parse_scopes(request.GET.getlist("scope"))
        granted = tokens.grant(identity.user, identity.token, requested)
        issued = tokens.issue(identity.user, identity.token, granted, service=service_name(request))
        response = json_response(
            {
                "token": issued.token,
                "access_token": issued.token,
                "expires_in": issued.expires_in,
                "issued_at": issued.issued_at.isoformat().replace("+00:00", "Z"),
            }
        )
        response["Cache-Control"] = "no-store"
        return response

    def post(self, request):
        # The OAuth2 form of the endpoint; Docker falls back to GET on 404.
        return HttpResponse(status=404)


# Helpers shared by the views above.


def json_response(data, *, status=200, content_type="application/json") -> HttpResponse:
    return HttpResponse(json.dumps(data).encode(), status=status, content_type=content_type)


def query_int(request, name: str) -> int | None:
    raw = request.GET.get(name, "").strip()
    if not raw:
        return None
    try:
        return int(raw)
    except ValueError:
        return 0


def byte_range(size: int) -> str:
    """The `Range` header of an upload: the inclusive range received (0-0 when empty)."""
    return f"0-{max(size - 1, 0)}"


def blob_created(view: RegistryView, digest: str) -> HttpResponse:
    response = HttpResponse(status=201)
    response["Location"] = view.repository_url(f"blobs/{digest}")
    response["Docker-Content-Digest"] = digest
    return response


def upload_response(view: RegistryView, upload: BlobUpload, *, status: int) -> HttpResponse:
    response = HttpResponse(status=status)
    response["Location"] = view.repository_url(f"blobs/uploads/{upload.id}")
    response["Range"] = byte_range(upload.bytes_received)
    response["Docker-Upload-UUID"] = str(upload.id)
    response["Content-Length"] = "0"
    return response


def parse_content_range(header: str) -> int | None:
    """The start offset of a `Content-Range: <start>-<end>` chunk, or None without one."""
    header = header.strip()
    if not header:
        return None
    if header.lower().startswith("bytes"):
        header = header[5:].lstrip(" =")
    start, sep, end = header.partition("-")
    end = end.split("/")[0]
    if not sep or not start.isdigit() or not end.isdigit() or int(end) < int(start):
        raise UploadRangeInvalid(f"invalid Content-Range {header!r}")
    return int(start)


def parse_blob_digest(raw: str) -> Digest:
    """A blob path's digest; a malformed one names no blob (404, as Gitea answers)."""
    try:
        return parse_digest(raw)
    except DigestInvalid as error:
        raise BlobUnknown(error.message, detail={"digest": raw}) from None
