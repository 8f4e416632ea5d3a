from django.contrib import admin

from tenancy.admin import Record

from .models import Artifact, Deployment


@admin.register(Deployment)
class DeploymentAdmin(Record):
    """Immutable: a change is a new deployment, made by deploying (which builds it)."""

    list_display = ["short_id", "worker", "tenant", "status", "backend", "created", "finished_at"]
    list_filter = ["status", "backend", "tenant"]
    search_fields = ["short_id", "code", "worker__name", "tenant__slug", "backend_id"]
    exclude = ["secrets_sealed"]  # sealed secrets are nobody's reading


@admin.register(Artifact)
class ArtifactAdmin(Record):
    list_display = ["sha256", "size", "created"]
    search_fields = ["sha256"]
