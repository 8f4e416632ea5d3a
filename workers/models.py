"""Workers: a tenant's named function module, pointing at its production deployment."""

import uuid

from django.conf import settings
from django.core.validators import MaxLengthValidator
from django.db import models

from tenancy.limits import RuntimeLimits
from tenancy.models import Membership, Tenant, TenantScopedQuerySet, label_validator

from .addresses import worker_host


class Worker(RuntimeLimits):
    code = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    tenant = models.ForeignKey(Tenant, models.CASCADE, related_name="workers")
    name = models.CharField(
        max_length=30,
        validators=[label_validator, MaxLengthValidator(30)],
        help_text="Lowercase letters, digits and hyphens; part of the worker's URL.",
    )
    public = models.BooleanField(
        default=False,
        help_text="Public workers answer anyone; private ones need an API key with the invoke "
        "scope. Only tenant admins and owners change it.",
    )
    production = models.ForeignKey(
        "deployments.Deployment",
        models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        help_text="The deployment the stable production URL serves.",
    )
    auto_promote = models.BooleanField(
        default=True,
        help_text="Each ready deployment goes live at once; off: it is a preview at its own "
        "URL until someone promotes it.",
    )
    production_since = models.DateTimeField(null=True, blank=True)
    promoted_by = models.CharField(
        max_length=200, blank=True, help_text="Who pointed production where it is, as it was."
    )
    # A canary: this share (1-99 %) of production traffic goes to `canary` instead.
    canary = models.ForeignKey(
        "deployments.Deployment", models.SET_NULL, null=True, blank=True, related_name="+"
    )
    canary_percent = models.PositiveSmallIntegerField(default=0)
    canary_since = models.DateTimeField(null=True, blank=True)
    canary_by = models.CharField(max_length=200, blank=True)
    # Rolls the canary back by itself when its error rate passes the stable side's by more
    # than `canary_margin` percentage points, once it has answered `canary_min_calls` calls.
    canary_auto_rollback = models.BooleanField(default=False)
    canary_margin = models.FloatField(default=5.0)
    canary_min_calls = models.PositiveIntegerField(default=20)
    canary_note = models.CharField(
        max_length=300, blank=True, help_text="How the last canary ended, for the worker page."
    )
    # On a back end that serves production under an alias (Vercel): the deployment the
    # alias points at, as the back end last confirmed, and why the last move failed.
    alias_target = models.ForeignKey(
        "deployments.Deployment", models.SET_NULL, null=True, blank=True, related_name="+"
    )
    alias_error = models.CharField(max_length=500, blank=True)
    # How async runs and scheduled runs of this worker are retried (empty: settings RUN_*).
    retry_attempts = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="Attempts in all, the first included (1 = no retry)."
    )
    retry_backoff_seconds = models.FloatField(
        null=True, blank=True, help_text="Delay before the first retry; doubles each time."
    )
    retry_max_delay_seconds = models.FloatField(
        null=True, blank=True, help_text="The longest delay between two attempts."
    )
    retry_on = models.JSONField(
        null=True, blank=True, help_text='Failures that retry: any of "error", "timeout", "limit".'
    )
    created = models.DateTimeField(auto_now_add=True)

    objects = TenantScopedQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "name"], name="unique_worker_name")
        ]

    def __str__(self) -> str:
        return f"{self.tenant.slug}/{self.name}"

    @property
    def host(self) -> str:
        return worker_host(self.name, self.tenant.slug)

    def latest_deployment(self):
        return self.deployments.order_by("-created", "-id").first()


class ApiKey(models.Model):
    """A tenant's key for the JSON API. Only a hash of the secret is stored; the prefix
    is kept in clear so people can tell their keys apart."""

    tenant = models.ForeignKey(Tenant, models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=12, unique=True, editable=False)
    secret_hash = models.CharField(max_length=64, editable=False)
    scopes = models.JSONField(default=list, help_text="Actions it may take (access.KEY_SCOPES).")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    # A personal key (`functions login`) acts for one member: never beyond their role in
    # the tenant, and not at all once they leave it.
    member = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        models.CASCADE,
        null=True,
        blank=True,
        related_name="personal_keys",
        help_text="A personal key acts with at most this member's role, and stops when they "
        "leave the tenant.",
    )

    objects = TenantScopedQuerySet.as_manager()

    class Meta:
        ordering = ["-created"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None

    def member_role(self) -> str | None:
        """The role of the member a personal key acts for, read once per request (None: no
        longer a member)."""
        if "_member_role" not in self.__dict__:
            found = Membership.objects.filter(
                user_id=self.member_id,  # type: ignore[misc]
                tenant_id=self.tenant_id,
            )
            self.__dict__["_member_role"] = found.values_list("role", flat=True).first()
        return self.__dict__["_member_role"]


class KeyRequest(models.Model):
    """A key the `functions` CLI asked for: the user approves it in the portal (choosing the
    tenant and the scopes); the CLI collects the key once, by polling with a token only it
    holds. The secret waits here encrypted, and is wiped when collected."""

    class Status(models.TextChoices):
        PENDING = "pending"
        APPROVED = "approved"
        DENIED = "denied"
        COLLECTED = "collected"

    code = models.CharField(max_length=9, unique=True)
    poll_hash = models.CharField(max_length=64, unique=True)
    client = models.CharField(max_length=100)
    address = models.GenericIPAddressField(null=True, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    created = models.DateTimeField(auto_now_add=True)
    expires = models.DateTimeField()
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.SET_NULL, null=True, blank=True, related_name="+"
    )
    key = models.ForeignKey(ApiKey, models.SET_NULL, null=True, blank=True, related_name="+")
    secret_sealed = models.TextField(blank=True, editable=False)

    class Meta:
        indexes = [models.Index(fields=["address", "status"])]

    def __str__(self) -> str:
        return f"{self.code} ({self.status})"


class WorkerSecret(models.Model):
    """An environment variable of a worker, readable by its code as process.env.NAME. The
    value is encrypted and never shown again; each deployment takes a snapshot."""

    worker = models.ForeignKey(Worker, models.CASCADE, related_name="secrets")
    name = models.CharField(max_length=64)
    value_encrypted = models.TextField(editable=False)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["worker", "name"], name="unique_secret_name")
        ]

    def __str__(self) -> str:
        return f"{self.worker} {self.name}"


class WorkerSetting(models.Model):
    """A plain setting of a worker (a feature flag, a public URL): shown to its members, read
    by its code as ctx.env.NAME and process.env.NAME like a secret, and, like secrets, taken
    into each deployment when it is made."""

    worker = models.ForeignKey(Worker, models.CASCADE, related_name="plain_settings")
    name = models.CharField(max_length=64)
    value = models.TextField(max_length=4096, blank=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["worker", "name"], name="unique_setting_name")
        ]

    def __str__(self) -> str:
        return f"{self.worker} {self.name}"


class Domain(models.Model):
    """A hostname of a tenant's own (api.customer.com) that serves its workers once the tenant
    has shown it holds it: a TXT record `_functions-challenge.<hostname>` holding `token`.
    Checked again on a schedule (workers.domains); served only while verified. Any number of
    tenants may claim a name; the first to verify it holds it."""

    class Status(models.TextChoices):
        PENDING = "pending"  # the record has not been seen yet
        VERIFIED = "verified"
        FAILING = "failing"  # it was verified, and its record is gone: not served

    code = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    tenant = models.ForeignKey(Tenant, models.CASCADE, related_name="domains")
    hostname = models.CharField(max_length=253)
    token = models.CharField(max_length=64, editable=False)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    verified_at = models.DateTimeField(null=True, blank=True)
    failing_since = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    checked_at = models.DateTimeField(null=True, blank=True)
    next_check_at = models.DateTimeField(null=True, blank=True, db_index=True)
    added_by = models.CharField(max_length=200, blank=True)
    created = models.DateTimeField(auto_now_add=True)
    # On a back end that serves names itself (Vercel), for the worker its `/` route names:
    # null until the name is claimed there; its own challenge's records while it asks one.
    # Serves the tenant's portal under its brand instead of workers (its routes then unused).
    portal = models.BooleanField(default=False)
    remote_verified = models.BooleanField(null=True, blank=True)
    remote_records = models.JSONField(default=list, blank=True)
    remote_error = models.CharField(max_length=500, blank=True)

    objects = TenantScopedQuerySet.as_manager()

    class Meta:
        ordering = ["hostname"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "hostname"], name="one_claim_per_tenant"),
            # First verified wins: a name serves one tenant.
            models.UniqueConstraint(
                fields=["hostname"], condition=models.Q(status="verified"), name="one_holder"
            ),
        ]

    def __str__(self) -> str:
        return self.hostname

    @property
    def record_name(self) -> str:
        return f"_functions-challenge.{self.hostname}"


class DomainRoute(models.Model):
    """Requests to the domain whose path starts with `prefix` go to `worker`'s production
    (the longest prefix wins; `/` takes the rest)."""

    domain = models.ForeignKey(Domain, models.CASCADE, related_name="routes")
    worker = models.ForeignKey(Worker, models.CASCADE, related_name="domain_routes")
    prefix = models.CharField(max_length=200, default="/")

    class Meta:
        ordering = ["-prefix"]
        constraints = [
            models.UniqueConstraint(fields=["domain", "prefix"], name="one_worker_per_prefix")
        ]

    def __str__(self) -> str:
        return f"{self.domain}{self.prefix} -> {self.worker}"


class InvocationSecret(models.Model):
    """A secret a caller of a private worker may send as `x-invoke-secret` to its deployments
    on the Vercel back end (besides an API key with the invoke scope). Made in the worker's
    settings and shown once; only its SHA-256 is kept. Several may be valid at once, so that
    callers move to a new one before the old is revoked; a revoked one stops opening the
    worker within seconds (the deployment asks the platform at most 2 s apart)."""

    code = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    worker = models.ForeignKey(Worker, models.CASCADE, related_name="invocation_secrets")
    prefix = models.CharField(max_length=16, editable=False)  # shown, to tell them apart
    digest = models.CharField(max_length=64, unique=True, editable=False)
    created = models.DateTimeField(auto_now_add=True)
    created_by = models.CharField(max_length=200, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created"]

    def __str__(self) -> str:
        return f"{self.prefix}… of {self.worker}"
