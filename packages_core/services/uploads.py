"""Upload sessions: bytes on their way to becoming a blob."""

from __future__ import annotations

from django.db import transaction

from packages_core.content_store import ContentStore
from packages_core.models import BlobUpload


def discard_upload(upload: BlobUpload, *, store: ContentStore | None = None) -> None:
    """Forget an upload; its staged bytes are deleted once that has committed."""
    store = store or ContentStore.default()
    key = upload.storage_key
    with transaction.atomic():
        upload.delete()
        if key:
            transaction.on_commit(lambda: store.delete(key))
