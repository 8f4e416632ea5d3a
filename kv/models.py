"""Key-value namespaces of a tenant: its workers bind them by name (each deployment keeps the
bindings it was made with, like secrets) and keep entries in them; stored in Postgres."""

import uuid

from django.core.validators import RegexValidator
from django.db import models

from tenancy.models import Tenant, TenantScopedQuerySet, label_validator
from workers.models import Worker

BINDING_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]{0,63}$"  # a JavaScript name: ctx.kv.<binding>


class Namespace(models.Model):
    code = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    tenant = models.ForeignKey(Tenant, models.CASCADE, related_name="kv_namespaces")
    name = models.CharField(max_length=40, validators=[label_validator])
    created = models.DateTimeField(auto_now_add=True)
    created_by = models.CharField(max_length=200, blank=True)

    objects = TenantScopedQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "name"], name="one_namespace_name")
        ]

    def __str__(self) -> str:
        return f"{self.tenant.slug}/{self.name}"


class Entry(models.Model):
    """One key's value (bytes), its metadata and expiry; `version` grows with every write, for
    compare-and-set."""

    namespace = models.ForeignKey(Namespace, models.CASCADE, related_name="entries")
    key = models.CharField(max_length=512)
    value = models.BinaryField()
    size = models.PositiveIntegerField()  # bytes of key, value and metadata, for the quota
    metadata = models.JSONField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True, db_index=True)
    version = models.PositiveBigIntegerField(default=1)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["key"]
        constraints = [
            models.UniqueConstraint(fields=["namespace", "key"], name="one_value_per_key")
        ]

    def __str__(self) -> str:
        return f"{self.namespace}:{self.key}"


class Binding(models.Model):
    """The worker's code reaches `namespace` as ctx.kv.<name>."""

    worker = models.ForeignKey(Worker, models.CASCADE, related_name="kv_bindings")
    namespace = models.ForeignKey(Namespace, models.CASCADE, related_name="bindings")
    name = models.CharField(
        max_length=64, validators=[RegexValidator(BINDING_PATTERN, "Use a JavaScript name.")]
    )

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["worker", "name"], name="one_binding_name")]

    def __str__(self) -> str:
        return f"{self.worker} {self.name} -> {self.namespace}"
