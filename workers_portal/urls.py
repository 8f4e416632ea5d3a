"""The project's URLs: each entry point's own, included by name, so this wiring imports
none of them (the layers in pyproject.toml hold for it too)."""

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("api/", include("api.urls")),
    path("internal/", include("runtime_api.urls")),
    path("admin/", admin.site.urls),
    path("", include("portal.urls")),
]
