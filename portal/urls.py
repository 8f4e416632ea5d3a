from django.contrib.auth import views as auth_views
from django.urls import path

from . import (
    audit_log,
    deployments,
    invocations,
    keys,
    logs,
    members,
    operators,
    releases,
    runs,
    secrets,
    time_zone,
    workers,
)


def log_urls(kind: str, prefix: str) -> list:
    return [
        path(f"{prefix}/<uuid:code>/logs/", logs.log_page, {"kind": kind}, name=f"{kind}-logs"),
        path(
            f"{prefix}/<uuid:code>/logs/tail/",
            logs.log_tail,
            {"kind": kind},
            name=f"{kind}-logs-tail",
        ),
        path(
            f"{prefix}/<uuid:code>/logs/older/",
            logs.log_older,
            {"kind": kind},
            name=f"{kind}-logs-older",
        ),
    ]


urlpatterns = [
    *log_urls("worker", "workers"),
    *log_urls("deployment", "deployments"),
    path("", workers.dashboard, name="dashboard"),
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("tenant/", workers.switch_tenant, name="switch-tenant"),
    path("operators/", operators.operators_home, name="operators"),
    path("time-zone/", time_zone.time_zone, name="time-zone"),
    path("workers/new/", workers.new_worker, name="new-worker"),
    path("keys/", keys.api_keys, name="api-keys"),
    path("keys/<int:pk>/revoke/", keys.revoke_key, name="revoke-key"),
    path("audit/", audit_log.audit_log, name="audit-log"),
    path("members/", members.members, name="members"),
    path("members/<int:pk>/role/", members.change_role, name="member-role"),
    path("members/<int:pk>/remove/", members.remove_member, name="member-remove"),
    path(
        "invitations/<int:pk>/withdraw/",
        members.withdraw_invitation,
        name="withdraw-invitation",
    ),
    path("invite/<str:token>/", members.accept_invitation, name="accept-invitation"),
    path("workers/<uuid:code>/", workers.worker_detail, name="worker"),
    path("workers/<uuid:code>/deployments/", workers.worker_deployments, name="worker-deployments"),
    path("workers/<uuid:code>/settings/", workers.worker_settings, name="worker-settings"),
    path("workers/<uuid:code>/auto-promote/", workers.auto_promote, name="worker-auto-promote"),
    path("workers/<uuid:code>/deploy/", workers.redeploy, name="redeploy"),
    path(
        "workers/<uuid:code>/redeploy-production/",
        workers.redeploy_production,
        name="redeploy-production",
    ),
    path("workers/<uuid:code>/secrets/", secrets.worker_secrets, name="worker-secrets"),
    path(
        "workers/<uuid:code>/secrets/<str:name>/delete/",
        secrets.delete_secret,
        name="delete-secret",
    ),
    path("workers/<uuid:code>/delete/", workers.delete_worker, name="delete-worker"),
    path("workers/<uuid:code>/visibility/", workers.visibility, name="worker-visibility"),
    path("deployments/<uuid:code>/", deployments.deployment_detail, name="deployment"),
    path("deployments/<uuid:code>/panel/", deployments.deployment_panel, name="deployment-panel"),
    path("deployments/<uuid:code>/badge/", deployments.deployment_badge, name="deployment-badge"),
    path("deployments/<uuid:code>/invoke/", deployments.invoke, name="invoke"),
    path("deployments/<uuid:code>/promote/", deployments.promote, name="promote"),
    path("deployments/<uuid:code>/diff/", deployments.diff, name="deployment-diff"),
    path("deployments/<uuid:code>/canary/", releases.canary_start, name="canary-start"),
    path("workers/<uuid:code>/canary/", releases.canary_panel, name="worker-canary"),
    path("workers/<uuid:code>/canary/change/", releases.canary_change, name="worker-canary-change"),
    path("workers/<uuid:code>/runs/", runs.worker_runs, name="worker-runs"),
    path(
        "workers/<uuid:code>/invocations/",
        invocations.worker_invocations,
        name="worker-invocations",
    ),
    path(
        "deployments/<uuid:code>/invocations/",
        invocations.deployment_invocations,
        name="deployment-invocations",
    ),
    path("workers/<uuid:code>/runs/replay-all/", runs.replay_all, name="worker-replay-all"),
    path("workers/<uuid:code>/retry-policy/", runs.retry_policy, name="worker-retry-policy"),
    path("workers/<uuid:code>/schedules/new/", runs.new_schedule, name="new-schedule"),
    path("schedules/<uuid:code>/<str:act>/", runs.schedule_act, name="schedule-act"),
    path("runs/", runs.tenant_runs, name="runs"),
    path("runs/<uuid:code>/", runs.run_detail, name="run"),
    path("runs/<uuid:code>/<str:act>/", runs.run_act, name="run-act"),
    path("releases/", releases.releases, name="releases"),
    path("releases/<uuid:code>/", releases.release_detail, name="release"),
    path(
        "releases/<uuid:code>/<str:act>/",
        releases.release_act,
        name="release-act",
    ),
    path(
        "deployments/<uuid:code>/cancel/",
        deployments.cancel_deployment,
        name="cancel-deployment",
    ),
    path("invocations/<str:request_id>/", logs.invocation_detail, name="invocation"),
]
