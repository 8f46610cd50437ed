"""How the packages API shows a generic version: the names of its files as well."""

from rest_framework import serializers

from packages_core.api.serializers import VersionSerializer


class GenericVersionSerializer(VersionSerializer):
    file_names = serializers.SerializerMethodField(help_text="The version's files, by name.")

    def get_file_names(self, version) -> list[str]:
        return sorted(version.files.values_list("name", flat=True))
