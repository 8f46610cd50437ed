"""The package domain's models, one module per concern."""

from packages_core.models.blobs import BlobDeletion, BlobUpload, PackageBlob
from packages_core.models.limits import CleanupRule, OwnerQuota
from packages_core.models.owners import Membership, Owner
from packages_core.models.packages import Package, PackageFile, PackageProperty, PackageVersion
from packages_core.models.tokens import AccessToken
from packages_core.models.webhooks import Webhook, WebhookDelivery

__all__ = [
    "AccessToken",
    "BlobDeletion",
    "BlobUpload",
    "CleanupRule",
    "Membership",
    "Owner",
    "OwnerQuota",
    "Package",
    "PackageBlob",
    "PackageFile",
    "PackageProperty",
    "PackageVersion",
    "Webhook",
    "WebhookDelivery",
]
