"""The project's URLs: each entry point's own, included by name, so this wiring imports
none of them (the layers in pyproject.toml hold for it too)."""

from allauth.account.decorators import secure_admin_login
from django.contrib import admin
from django.urls import include, path

# The admin's sign-in is the portal's (throttled, audited; later, with a second factor).
admin.site.login = secure_admin_login(admin.site.login)  # type: ignore[method-assign]

urlpatterns = [
    path("api/", include("api.urls")),
    path("internal/", include("runtime_api.urls")),
    path("admin/", admin.site.urls),
    path("", include("portal.urls")),
]
