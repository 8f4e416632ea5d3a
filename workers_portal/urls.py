from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import path

from deployments import announce, api_logs, drains, internal, log_views
from deployments import views as deployment_views
from workers import api, key_views, openapi, secret_views
from workers import views as worker_views
from workers_portal import members
from workers_portal import views as portal_views


def log_urls(kind: str, prefix: str) -> list:
    return [
        path(
            f"{prefix}/<uuid:code>/logs/", log_views.log_page, {"kind": kind}, name=f"{kind}-logs"
        ),
        path(
            f"{prefix}/<uuid:code>/logs/tail/",
            log_views.log_tail,
            {"kind": kind},
            name=f"{kind}-logs-tail",
        ),
        path(
            f"{prefix}/<uuid:code>/logs/older/",
            log_views.log_older,
            {"kind": kind},
            name=f"{kind}-logs-older",
        ),
    ]


urlpatterns = [
    *log_urls("worker", "workers"),
    *log_urls("deployment", "deployments"),
    path("", worker_views.dashboard, name="dashboard"),
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("workers/new/", worker_views.new_worker, name="new-worker"),
    path("keys/", key_views.api_keys, name="api-keys"),
    path("audit/", portal_views.audit_log, name="audit-log"),
    path("members/", members.members, name="members"),
    path("members/<int:pk>/role/", members.change_role, name="member-role"),
    path("members/<int:pk>/remove/", members.remove_member, name="member-remove"),
    path("invite/<str:token>/", members.accept_invitation, name="accept-invitation"),
    path("keys/<int:pk>/revoke/", key_views.revoke_key, name="revoke-key"),
    path("workers/<uuid:code>/", worker_views.worker_detail, name="worker"),
    path("workers/<uuid:code>/deploy/", worker_views.redeploy, name="redeploy"),
    path("workers/<uuid:code>/secrets/", secret_views.worker_secrets, name="worker-secrets"),
    path(
        "workers/<uuid:code>/secrets/<str:name>/delete/",
        secret_views.delete_secret,
        name="delete-secret",
    ),
    path("workers/<uuid:code>/delete/", worker_views.delete_worker, name="delete-worker"),
    path("workers/<uuid:code>/visibility/", worker_views.set_visibility, name="worker-visibility"),
    path("deployments/<uuid:code>/", deployment_views.deployment_detail, name="deployment"),
    path(
        "deployments/<uuid:code>/panel/", deployment_views.deployment_panel, name="deployment-panel"
    ),
    path(
        "deployments/<uuid:code>/badge/", deployment_views.deployment_badge, name="deployment-badge"
    ),
    path("deployments/<uuid:code>/invoke/", deployment_views.invoke, name="invoke"),
    path(
        "deployments/<uuid:code>/cancel/",
        deployment_views.cancel_deployment,
        name="cancel-deployment",
    ),
    path("invocations/<str:request_id>/", log_views.invocation_detail, name="invocation"),
    path("api/openapi.json", openapi.openapi, name="openapi"),
    path("api/workers", api.workers, name="api-workers"),
    path("api/workers/<uuid:code>", api.worker_detail, name="api-worker"),
    path(
        "api/workers/<uuid:code>/deployments", api.worker_deployments, name="api-worker-deployments"
    ),
    path("api/workers/<uuid:code>/production", api.worker_production, name="api-worker-production"),
    path("api/deployments/<uuid:code>", api.deployment_detail, name="api-deployment"),
    path("api/deployments/<uuid:code>/cancel", api.deployment_cancel, name="api-deployment-cancel"),
    path("api/workers/<uuid:code>/logs", api_logs.logs_stream, name="api-logs-stream"),
    path("api/workers/<uuid:code>/logs/poll", api_logs.logs_poll, name="api-logs-poll"),
    path("api/drains/vercel", drains.vercel_drain, name="vercel-drain"),
    path("internal/runtime/hosts/<str:host>", internal.resolve_host),
    path("internal/runtime/artifacts/<str:sha256>", internal.artifact),
    path("internal/runtime/keys/<str:prefix>", internal.api_key),
    path("internal/runtime/ingest", internal.ingest),
    path("internal/runtime/events", announce.events),
    path(
        "internal/deployments/<uuid:code>/ingest",
        internal.deployment_ingest,
        name="deployment-ingest",
    ),
    path("admin/", admin.site.urls),
]
