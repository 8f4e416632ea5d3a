"""The portal's side of the one access path: objects looked up through what the principal
may see (404 for everyone else), actions checked with access.check (403 with the reason)."""

from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import get_object_or_404

from tenancy.access import Denied, check


def visible(request, queryset, **lookup):
    """The object if the request's principal may see it; 404 for everyone else."""
    return get_object_or_404(queryset.visible_to(request.principal), **lookup)


def require(request, action, obj, *, viewing: bool = False) -> None:
    """403 with the reason (a viewer's role, a suspended tenant) unless the principal may;
    `viewing` for a page that only shows what the action would change."""
    try:
        check(request.principal, action, obj, viewing=viewing)
    except Denied as exc:
        if exc.code == "not_found":
            raise Http404(exc.message) from exc
        raise PermissionDenied(exc.message) from exc
