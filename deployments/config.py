"""The configuration a deployment runs with, built once for every back end: the local
runtime fetches it from the internal API, the Vercel back end writes it into the generated
project. Limit names come from the contract (contract.json)."""

from tenancy.limits import effective_limits


def limits(deployment) -> dict:
    """The contract's limits (contract.json "limits"; tests/test_contract.py checks)."""
    return worker_limits(deployment.worker)


def worker_limits(worker) -> dict:
    """What the worker's deployments run with (the API shows it; `functions dev` copies it)."""
    own = effective_limits(worker)
    tenant = worker.tenant
    return {
        "timeoutMs": int(own["timeout_seconds"] * 1000),
        "cpuMs": own["cpu_ms"],
        "memoryMb": own["memory_mb"],
        "maxConcurrency": own["max_concurrency"],
        "maxResultBytes": own["max_result_bytes"],
        "maxLogLines": own["max_log_lines"],
        "maxLineBytes": own["max_line_bytes"],
        "maxBodyBytes": tenant.quota("max_payload_bytes"),
        # The tenant's whole quota; a runtime host that counts alone takes its share.
        "invocationsPerMinute": tenant.quota("max_invocations_per_minute"),
    }


def runtime_config(deployment) -> dict:
    """Everything a deployment runs with, secrets included (callers hold them carefully)."""
    return {
        "id": str(deployment.code),
        "tenant": deployment.tenant_id,
        "public": deployment.worker.public,
        "host": deployment.host,
        "functions": list(deployment.functions),
        "http": deployment.http,
        "artifact": deployment.artifact_id,
        **limits(deployment),
        "env": deployment.environment(),
        # Binding name -> namespace id: what ctx.kv holds (the namespace's own id only lets
        # a host keep one cache per namespace; operations name the binding).
        "kv": dict(deployment.kv_bindings or {}),
    }
