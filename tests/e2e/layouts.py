"""OCI image layouts for the end-to-end tests, made with the standard library alone.

A layout is a directory holding `oci-layout`, `index.json` and `blobs/sha256/<hex>`;
skopeo reads one as `oci:DIR:TAG`. Every byte is deterministic (fixed tar metadata,
gzip without a timestamp, JSON with sorted keys), so the same call always yields the
same digests and a test can compare what comes back from a registry with what went in.
"""

from __future__ import annotations

import gzip as gzip_module
import hashlib
import io
import json
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

OCI_LAYOUT_VERSION = "1.0.0"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_TAR = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_TAR_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
REF_NAME = "org.opencontainers.image.ref.name"
DESCRIPTION_LABEL = "org.opencontainers.image.description"

FIXED_MTIME = 1_700_000_000  # 2023-11-14T22:13:20Z
FIXED_CREATED = "2023-11-14T22:13:20Z"


@dataclass(frozen=True)
class Descriptor:
    """An OCI content descriptor: what a manifest or index says about a blob."""

    media_type: str
    digest: str
    size: int

    def to_json(self) -> dict:
        return {"mediaType": self.media_type, "digest": self.digest, "size": self.size}


@dataclass
class ImageInfo:
    """What make_image wrote: the digests a registry must hand back unchanged."""

    tag: str
    manifest: Descriptor
    config: Descriptor
    layers: list[Descriptor]
    diff_ids: list[str]
    platform: tuple[str, str]

    @property
    def manifest_digest(self) -> str:
        return self.manifest.digest

    @property
    def config_digest(self) -> str:
        return self.config.digest

    @property
    def layer_digests(self) -> list[str]:
        return [layer.digest for layer in self.layers]


@dataclass
class IndexInfo:
    """What make_index wrote: the index and one image per platform."""

    tag: str
    index: Descriptor
    children: dict[tuple[str, str], ImageInfo] = field(default_factory=dict)

    @property
    def index_digest(self) -> str:
        return self.index.digest


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def canonical_json(value) -> bytes:
    """JSON with sorted keys and no spaces: the same value always gives the same bytes."""
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


def make_tar(files: dict[str, bytes]) -> bytes:
    """An uncompressed tar of `files` (path -> bytes) with parent directories, sorted,
    owned by 0:0 and stamped with a fixed time.
    """
    directories: set[str] = set()
    for path in files:
        parts = path.strip("/").split("/")[:-1]
        for depth in range(1, len(parts) + 1):
            directories.add("/".join(parts[:depth]))

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name in sorted(directories | {p.strip("/") for p in files}):
            info = tarfile.TarInfo(name)
            info.mtime = FIXED_MTIME
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            if name in directories:
                info.type = tarfile.DIRTYPE
                info.mode = 0o755
                tar.addfile(info)
            else:
                data = files.get(name, files.get("/" + name, b""))
                info.mode = 0o644
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def gzip_bytes(data: bytes) -> bytes:
    """Gzip without a file name or timestamp in the header, so the output is stable."""
    buffer = io.BytesIO()
    with gzip_module.GzipFile(filename="", mode="wb", fileobj=buffer, mtime=0) as out:
        out.write(data)
    return buffer.getvalue()


class Layout:
    """An OCI image layout directory: blobs are written once, index.json maps tags."""

    def __init__(self, directory: str | Path):
        self.root = Path(directory)
        self.blobs = self.root / "blobs" / "sha256"
        self.blobs.mkdir(parents=True, exist_ok=True)
        layout_file = self.root / "oci-layout"
        if not layout_file.exists():
            layout_file.write_bytes(canonical_json({"imageLayoutVersion": OCI_LAYOUT_VERSION}))

    def write_blob(self, media_type: str, data: bytes) -> Descriptor:
        digest = sha256_digest(data)
        path = self.blobs / digest.split(":", 1)[1]
        if not path.exists():
            path.write_bytes(data)
        return Descriptor(media_type, digest, len(data))

    def read_blob(self, digest: str) -> bytes:
        return (self.blobs / digest.split(":", 1)[1]).read_bytes()

    def tag(self, descriptor: Descriptor, tag: str) -> None:
        """Point `tag` at `descriptor` in index.json, replacing an earlier entry for it."""
        index_path = self.root / "index.json"
        if index_path.exists():
            index = json.loads(index_path.read_bytes())
        else:
            index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}
        index["manifests"] = [
            entry
            for entry in index["manifests"]
            if (entry.get("annotations") or {}).get(REF_NAME) != tag
        ]
        index["manifests"].append({**descriptor.to_json(), "annotations": {REF_NAME: tag}})
        index_path.write_bytes(canonical_json(index))


def read_tagged(directory: str | Path, tag: str) -> dict:
    """The index.json entry of `tag` in a layout (e.g. one skopeo wrote)."""
    index = json.loads((Path(directory) / "index.json").read_bytes())
    for entry in index["manifests"]:
        if (entry.get("annotations") or {}).get(REF_NAME) == tag:
            return entry
    raise KeyError(f"no {tag!r} in {directory}/index.json: {index}")


def read_blob(directory: str | Path, digest: str) -> bytes:
    algorithm, hex_digest = digest.split(":", 1)
    return (Path(directory) / "blobs" / algorithm / hex_digest).read_bytes()


def _build_image(
    layout: Layout,
    tag: str,
    layers: list[dict[str, bytes]],
    platform: tuple[str, str],
    gzip: bool,
) -> ImageInfo:
    layer_descriptors = []
    diff_ids = []
    history = []
    for files in layers:
        tar = make_tar(files)
        diff_ids.append(sha256_digest(tar))
        if gzip:
            layer_descriptors.append(layout.write_blob(OCI_LAYER_TAR_GZIP, gzip_bytes(tar)))
        else:
            layer_descriptors.append(layout.write_blob(OCI_LAYER_TAR, tar))
        history.append(
            {
                "created": FIXED_CREATED,
                "created_by": (
                    f"/bin/sh -c #(nop) COPY file:{hashlib.sha256(tar).hexdigest()[:12]} in / "
                ),
            }
        )
    history.append(
        {
            "created": FIXED_CREATED,
            "created_by": '/bin/sh -c #(nop)  CMD ["/hello"]',
            "empty_layer": True,
        }
    )

    os_name, architecture = platform
    config = {
        "created": FIXED_CREATED,
        "architecture": architecture,
        "os": os_name,
        "config": {
            "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            "Cmd": ["/hello"],
            "Labels": {
                DESCRIPTION_LABEL: f"e2e test image {tag} for {os_name}/{architecture}",
                "org.opencontainers.image.source": "https://example.com/forge/e2e",
            },
        },
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": history,
    }
    config_descriptor = layout.write_blob(OCI_CONFIG, canonical_json(config))
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": config_descriptor.to_json(),
        "layers": [layer.to_json() for layer in layer_descriptors],
        "annotations": {"org.opencontainers.image.created": FIXED_CREATED},
    }
    manifest_descriptor = layout.write_blob(OCI_MANIFEST, canonical_json(manifest))
    return ImageInfo(
        tag=tag,
        manifest=manifest_descriptor,
        config=config_descriptor,
        layers=layer_descriptors,
        diff_ids=diff_ids,
        platform=platform,
    )


def make_image(
    directory: str | Path,
    tag: str,
    layers: list[dict[str, bytes]] | None = None,
    platform: tuple[str, str] = ("linux", "amd64"),
    gzip: bool = True,
) -> ImageInfo:
    """Write a single-platform image into the layout at `directory` and tag it.

    `layers` is a list of {path: bytes} dicts, one per layer, lowest first.
    """
    if layers is None:
        layers = [{"hello": f"hello from {tag}\n".encode()}]
    layout = Layout(directory)
    info = _build_image(layout, tag, layers, platform, gzip)
    layout.tag(info.manifest, tag)
    return info


def make_index(
    directory: str | Path,
    tag: str,
    platforms: list[tuple[str, str]] | None = None,
    gzip: bool = True,
) -> IndexInfo:
    """Write a multi-platform image: an OCI index whose children differ per platform."""
    if platforms is None:
        platforms = [("linux", "amd64"), ("linux", "arm64")]
    layout = Layout(directory)
    children = {}
    entries = []
    for os_name, architecture in platforms:
        child = _build_image(
            layout,
            f"{tag}-{os_name}-{architecture}",
            [
                {"etc/os-release": f"ID=e2e\nARCH={architecture}\n".encode()},
                {f"opt/{architecture}/hello": f"hello from {os_name}/{architecture}\n".encode()},
            ],
            (os_name, architecture),
            gzip,
        )
        children[(os_name, architecture)] = child
        entries.append(
            {
                **child.manifest.to_json(),
                "platform": {"architecture": architecture, "os": os_name},
            }
        )
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}
    index_descriptor = layout.write_blob(OCI_INDEX, canonical_json(index))
    layout.tag(index_descriptor, tag)
    return IndexInfo(tag=tag, index=index_descriptor, children=children)
