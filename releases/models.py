"""What serves production: the history of each worker's production, and releases that move
several workers at once. The tables keep the names they had under `deployments`."""

import uuid

from django.db import models
from django.utils import timezone

from deployments.models import Deployment
from tenancy.models import Tenant, TenantScopedQuerySet
from workers.models import Worker


class ProductionChange(models.Model):
    """What a worker's production URL served from one generation of its tenant on: the
    history of promotions, rollbacks, canaries and releases. A call made through a production
    URL carries its generation to the calls it makes, which resolve as of that generation."""

    tenant = models.ForeignKey(Tenant, models.CASCADE, related_name="+")
    generation = models.PositiveBigIntegerField()
    worker = models.ForeignKey(Worker, models.CASCADE, related_name="production_changes")
    production = models.ForeignKey(Deployment, models.CASCADE, null=True, related_name="+")
    canary = models.ForeignKey(Deployment, models.CASCADE, null=True, blank=True, related_name="+")
    canary_percent = models.PositiveSmallIntegerField(default=0)
    how = models.CharField(max_length=40)
    by = models.CharField(max_length=200, blank=True)
    created = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "deployments_productionchange"
        ordering = ["-generation"]
        constraints = [
            models.UniqueConstraint(
                fields=["worker", "generation"], name="one_change_per_worker_and_generation"
            )
        ]

    def __str__(self) -> str:
        return f"{self.worker} @ {self.generation}"


class Release(models.Model):
    """Several workers' deployments, promoted together and reverted together."""

    class Status(models.TextChoices):
        DRAFT = "draft"
        LIVE = "live"  # promoted, and still what those workers serve as far as it knows
        REVERTED = "reverted"

    code = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    tenant = models.ForeignKey(Tenant, models.CASCADE, related_name="releases")
    name = models.CharField(max_length=100)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.DRAFT)
    created_by = models.CharField(max_length=200, blank=True)
    created = models.DateTimeField(default=timezone.now)
    promoted_by = models.CharField(max_length=200, blank=True)
    promoted_at = models.DateTimeField(null=True, blank=True)
    generation = models.PositiveBigIntegerField(null=True, blank=True)
    # What each worker served just before the promotion ({worker code: deployment code or
    # None}): reverting brings exactly this set back.
    previous = models.JSONField(default=dict, blank=True)
    reverted_by = models.CharField(max_length=200, blank=True)
    reverted_at = models.DateTimeField(null=True, blank=True)

    objects = TenantScopedQuerySet.as_manager()

    class Meta:
        db_table = "deployments_release"
        ordering = ["-created", "-id"]

    def __str__(self) -> str:
        return f"{self.tenant.slug}/{self.name}"


class ReleaseItem(models.Model):
    release = models.ForeignKey(Release, models.CASCADE, related_name="items")
    worker = models.ForeignKey(Worker, models.CASCADE, related_name="+")
    deployment = models.ForeignKey(Deployment, models.CASCADE, related_name="+")

    class Meta:
        db_table = "deployments_releaseitem"
        ordering = ["worker__name"]
        constraints = [
            models.UniqueConstraint(fields=["release", "worker"], name="one_deployment_per_worker")
        ]

    def __str__(self) -> str:
        return f"{self.release}: {self.deployment}"
