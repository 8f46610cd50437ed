"""`ReadOnlyAdminMixin`: an admin or inline that shows rows something else makes."""

from __future__ import annotations


class ReadOnlyAdminMixin:
    """No adding or changing: the rows come from pushes, uploads or garbage collection,
    which keep rules a form would skip. Deleting stays as the admin has it unless
    `deletable` is False.
    """

    deletable = True

    def has_add_permission(self, request, obj=None):
        # `obj` is passed to inlines only; one signature serves both.
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return self.deletable and super().has_delete_permission(request, obj)
