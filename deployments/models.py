"""Deployments (immutable builds of a worker) and their artifacts."""

import hashlib
import json
import secrets
import string
import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone

from tenancy.events import emit
from tenancy.models import Tenant, TenantScopedQuerySet
from workers.addresses import deployment_host
from workers.models import Worker

from .backends import Backend as BackendInterface
from .backends import get_backend

SHORT_ID_ALPHABET = string.ascii_lowercase + string.digits


def new_short_id() -> str:
    return "".join(secrets.choice(SHORT_ID_ALPHABET) for _ in range(8))


def program_hash(files: dict, entry: str) -> str:
    """One digest for a program: a single index.ts hashes as before (its text alone)."""
    if list(files) == [entry] and entry == "index.ts":
        return hashlib.sha256(files[entry].encode()).hexdigest()
    canonical = json.dumps({"entry": entry, "files": files}, sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


class Artifact(models.Model):
    """Built code, stored once per content hash and never changed."""

    sha256 = models.CharField(max_length=64, primary_key=True)
    content = models.TextField()
    size = models.PositiveIntegerField()
    created = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.sha256[:12]

    @classmethod
    def store(cls, content: str) -> "Artifact":
        digest = hashlib.sha256(content.encode()).hexdigest()
        artifact, _ = cls.objects.get_or_create(
            sha256=digest, defaults={"content": content, "size": len(content.encode())}
        )
        return artifact


def took(obj: models.Model, status: str, fields: dict) -> None:
    """After a compare-and-swap of `obj`'s status won: the instance says what the row says."""
    obj.status = status  # type: ignore[attr-defined]
    for name, value in fields.items():
        if hasattr(value, "resolve_expression"):  # e.g. F("attempts") + 1: ask the row
            obj.refresh_from_db(fields=[name])
        else:
            setattr(obj, name, value)


class Deployment(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued"
        BUILDING = "building"
        READY = "ready"
        ERROR = "error"
        CANCELED = "canceled"

    TERMINAL = frozenset({Status.READY, Status.ERROR, Status.CANCELED})

    class Backend(models.TextChoices):
        LOCAL = "local"
        VERCEL = "vercel"

    code = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    short_id = models.CharField(max_length=8, unique=True, default=new_short_id, editable=False)
    worker = models.ForeignKey(Worker, models.CASCADE, related_name="deployments")
    tenant = models.ForeignKey(Tenant, models.CASCADE, related_name="deployments")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # The program: path -> text of every uploaded file, and which one is the entry module.
    # `source` keeps the entry module's text (what pages show first).
    files = models.JSONField(default=dict, blank=True)
    entry = models.CharField(max_length=300, default="index.ts")
    source = models.TextField()
    source_hash = models.CharField(max_length=64, editable=False)
    # The packages the build resolved, pinned (Deno's lockfile, JSON): the next deploy of the
    # worker starts from it, so the same files give the same artifact until an update.
    lockfile = models.TextField(blank=True)
    update_lock = models.BooleanField(default=False)
    # Deployed to be looked at first (`functions deploy --no-promote`): when ready it does
    # not go live by itself, whatever the worker's auto-promote.
    preview_only = models.BooleanField(default=False)
    # Whether the module's default export is a fetch handler serving raw HTTP.
    http = models.BooleanField(default=False)
    backend = models.CharField(max_length=16, choices=Backend.choices, default=Backend.LOCAL)
    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.QUEUED, db_index=True
    )
    functions = models.JSONField(default=list, blank=True)
    # The worker's secrets when it was deployed (encrypted): a rollback brings its set back.
    secrets_sealed = models.TextField(blank=True, editable=False)
    # Its plain settings then (shown): name -> value.
    plain_settings = models.JSONField(default=dict, blank=True, editable=False)
    # The key-value namespaces it reaches: binding name -> namespace id (kv.models).
    kv_bindings = models.JSONField(default=dict, blank=True, editable=False)
    error_message = models.TextField(blank=True)
    # Where a failed build's problems are: [{"file", "line", "column", "message"}].
    diagnostics = models.JSONField(default=list, blank=True)
    build_log = models.TextField(blank=True)
    build_attempts = models.PositiveSmallIntegerField(default=0)
    artifact = models.ForeignKey(Artifact, models.PROTECT, null=True, blank=True)
    # The back end's own id and URL for this deployment (Vercel's dpl_… and its .vercel.app
    # address; local_<short id> and nothing on this platform's runtime).
    backend_id = models.CharField(max_length=100, blank=True)
    backend_url = models.CharField(max_length=300, blank=True)
    # The back end's own word for the build's state (Vercel's readyState), as last polled.
    backend_state = models.CharField(max_length=100, blank=True)
    # Whether callers must send the deployment's invocation secret (a private worker's
    # deployment on a back end that cannot check the platform's API keys itself).
    invoke_secret_required = models.BooleanField(default=False)
    created = models.DateTimeField(default=timezone.now, db_index=True)
    updated = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    objects = TenantScopedQuerySet.as_manager()

    class Meta:
        ordering = ["-created", "-id"]

    def __str__(self) -> str:
        return f"{self.worker} @ {self.short_id}"

    def save(self, *args, **kwargs):
        if not self.files and self.source:
            self.files = {self.entry: self.source}
        if not self.source:
            self.source = self.files.get(self.entry, "")
        if not self.source_hash:
            self.source_hash = program_hash(self.files, self.entry)
        if not self.tenant_id and self.worker_id:
            self.tenant_id = self.worker.tenant_id
        super().save(*args, **kwargs)

    @property
    def is_terminal(self) -> bool:
        return self.status in self.TERMINAL

    def environment(self) -> dict[str, str]:
        """What its code reads as ctx.env and process.env: its plain settings and secrets as
        they were when it was made (a name is never both: see workers.settings)."""
        from workers.secrets import unseal

        secrets = unseal(self.secrets_sealed) if self.secrets_sealed else {}
        return {**(self.plain_settings or {}), **secrets}

    @classmethod
    def latest_of(cls, workers, *deferred: str) -> dict:
        """Worker id -> its newest deployment, in two queries however many workers (without
        the `deferred` fields, which a list may not need: a program's text is large)."""
        newest = cls.objects.filter(worker=models.OuterRef("pk")).order_by("-created", "-id")
        ids = Worker.objects.filter(pk__in=[w.pk for w in workers]).annotate(
            latest=models.Subquery(newest.values("id")[:1])
        )
        wanted = dict(ids.values_list("pk", "latest"))
        found = (
            cls.objects.select_related("worker", "tenant")
            .defer(*deferred)
            .in_bulk([d for d in wanted.values() if d])
        )
        return {w: found.get(d) for w, d in wanted.items()}

    @property
    def host(self) -> str:
        return deployment_host(self.worker.name, self.short_id, self.tenant.slug)

    @property
    def runs_on(self) -> BackendInterface:
        """The back end that builds and serves this deployment (deployments.backends)."""
        return get_backend(self.backend)

    @property
    def url(self) -> str:
        return self.runs_on.url(self)

    @property
    def path_url(self) -> str:
        """The URL in a form every client resolves (no wildcard names), where there is one."""
        return self.runs_on.plain_host_url(self) or self.url

    @property
    def program(self):
        from .program import Program, program_from_files

        try:
            return program_from_files(self.files, self.entry)
        except ValueError:  # stored before a rule tightened: built as it was sent
            return Program(files=self.files, entry=self.entry)

    @property
    def packages(self) -> list[dict]:
        """The pinned packages, from the lockfile: [{"name", "version", "registry"}]."""
        try:
            lock = json.loads(self.lockfile) if self.lockfile else {}
        except json.JSONDecodeError:
            return []
        found = []
        for key in sorted(lock.get("npm", {})):
            # "name@1.0.0", "@scope/name@1.0.0", "name@1.0.0_peer@2.0.0" (a peer variant)
            at = key.find("@", 1)
            if at > 0:
                version = key[at + 1 :].split("_")[0]
                found.append({"name": key[:at], "version": version, "registry": "npm"})
        for key in sorted(lock.get("jsr", {})):
            name, _, version = key.rpartition("@")
            found.append({"name": name, "version": version, "registry": "jsr"})
        for url in sorted(lock.get("remote", {})):
            found.append({"name": url, "version": "", "registry": "https"})
        return list({(p["registry"], p["name"], p["version"]): p for p in found}.values())

    @property
    def build_seconds(self) -> float | None:
        """Time from submit to a terminal state."""
        if self.finished_at:
            return (self.finished_at - self.created).total_seconds()
        return None

    def transition(self, old: str, new: str, **fields) -> bool:
        """Compare-and-swap the status; True only for the caller whose update won."""
        now = timezone.now()
        fields.setdefault("updated", now)
        if new in self.TERMINAL:
            fields.setdefault("finished_at", now)
        changed = Deployment.objects.filter(pk=self.pk, status=old).update(status=new, **fields)
        if changed:
            took(self, new, fields)
            if new in (self.Status.READY, self.Status.ERROR):
                self.tell("deployment.ready" if new == self.Status.READY else "deployment.failed")
        return bool(changed)

    def tell(self, event_type: str, **more) -> None:
        """Tell the tenant's systems what happened to this deployment (tenancy.events)."""
        emit(self.tenant_id, event_type, lambda: {
            "worker": self.worker.name,
            "deployment": {
                "id": str(self.code), "shortId": self.short_id, "status": self.status,
                "url": self.url, "createdAt": self.created.isoformat(),
                **({"error": self.error_message[:2000]} if self.status == self.Status.ERROR else {}),
            },
            **more,
        })  # fmt: skip
