from django.urls import path

from . import views

urlpatterns = [
    path("runtime/hosts/<str:host>", views.resolve_host),
    path("runtime/artifacts/<str:sha256>", views.artifact),
    path("runtime/keys/<str:prefix>", views.api_key),
    path("runtime/ingest", views.ingest),
    path("runtime/usage", views.usage),
    path("runtime/domains/<str:hostname>", views.domain_routes),
    path("edge/ask", views.edge_ask, name="edge-ask"),
    path("runtime/events", views.events),
    path("runtime/deployments/<uuid:code>/runs", views.runtime_runs),
    path("runtime/deployments/<uuid:code>/kv", views.runtime_binding, {"what": "kv"}),
    path("runtime/deployments/<uuid:code>/enqueue", views.runtime_binding, {"what": "enqueue"}),
    path("runtime/deployments/<uuid:code>/steps", views.runtime_binding, {"what": "steps"}),
    path("runtime/deployments/<uuid:code>/events", views.runtime_binding, {"what": "events"}),
    path("deployments/<uuid:code>/ingest", views.deployment_ingest, name="deployment-ingest"),
    path("deployments/<uuid:code>/secrets", views.deployment_secrets, name="deployment-secrets"),
    path("deployments/<uuid:code>/keys/<str:prefix>", views.deployment_key, name="deployment-key"),
    path("deployments/<uuid:code>/access", views.deployment_access, name="deployment-access"),
    path("deployments/<uuid:code>/calls", views.deployment_calls, name="deployment-calls"),
    path("deployments/<uuid:code>/peer", views.deployment_peer, name="deployment-peer"),
    path("deployments/<uuid:code>/runs", views.deployment_runs, name="deployment-runs"),
    path(
        "deployments/<uuid:code>/kv", views.deployment_binding, {"what": "kv"}, name="deployment-kv"
    ),
    path(
        "deployments/<uuid:code>/enqueue",
        views.deployment_binding,
        {"what": "enqueue"},
        name="deployment-enqueue",
    ),
    path(
        "deployments/<uuid:code>/events",
        views.deployment_binding,
        {"what": "events"},
        name="deployment-events",
    ),
    path(
        "deployments/<uuid:code>/steps",
        views.deployment_binding,
        {"what": "steps"},
        name="deployment-steps",
    ),
]
