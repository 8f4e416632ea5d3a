from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import path

from deployments import internal
from deployments import views as deployment_views
from workers import views as worker_views

urlpatterns = [
    path("", worker_views.dashboard, name="dashboard"),
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("workers/new/", worker_views.new_worker, name="new-worker"),
    path("workers/<uuid:code>/", worker_views.worker_detail, name="worker"),
    path("workers/<uuid:code>/deploy/", worker_views.redeploy, name="redeploy"),
    path("deployments/<uuid:code>/", deployment_views.deployment_detail, name="deployment"),
    path(
        "deployments/<uuid:code>/panel/", deployment_views.deployment_panel, name="deployment-panel"
    ),
    path(
        "deployments/<uuid:code>/badge/", deployment_views.deployment_badge, name="deployment-badge"
    ),
    path("deployments/<uuid:code>/invoke/", deployment_views.invoke, name="invoke"),
    path("internal/runtime/hosts/<str:host>", internal.resolve_host),
    path("internal/runtime/artifacts/<str:sha256>", internal.artifact),
    path("internal/runtime/ingest", internal.ingest),
    path("admin/", admin.site.urls),
]
