"""Name/value properties on packages, versions and files."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from packages_core.models import PackageProperty

RefType = PackageProperty.RefType


def set_property(ref_type: str, ref_id: int, name: str, value: str) -> PackageProperty:
    """Give the object exactly one property `name`, replacing earlier values."""
    PackageProperty.objects.filter(ref_type=ref_type, ref_id=ref_id, name=name).delete()
    return PackageProperty.objects.create(
        ref_type=ref_type, ref_id=ref_id, name=name, value=str(value)
    )


def add_properties(ref_type: str, ref_id: int, values: Mapping[str, str]) -> None:
    """Attach several properties in one query (values may repeat a name)."""
    PackageProperty.objects.bulk_create(
        PackageProperty(ref_type=ref_type, ref_id=ref_id, name=name, value=str(value))
        for name, value in values.items()
    )


def get_properties(ref_type: str, ref_id: int) -> dict[str, str]:
    """The object's properties as a dict (the last value wins when a name repeats)."""
    rows = PackageProperty.objects.filter(ref_type=ref_type, ref_id=ref_id)
    return dict(rows.values_list("name", "value"))


def delete_properties(ref_type: str, ref_ids: Iterable[int]) -> int:
    deleted, _ = PackageProperty.objects.filter(
        ref_type=ref_type, ref_id__in=list(ref_ids)
    ).delete()
    return deleted
