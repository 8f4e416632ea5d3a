"""A deployment -> the files of a Next.js project that serves it on Vercel.

The project is the same for every deployment except two files: `lib/worker.ts` (the tenant's
module, unchanged) and `lib/deployment.json` (its functions, limits, invocation-secret digest,
log ingest address and sealed secrets). Output is deterministic: the same deployment gives
byte-identical files, so their SHAs (and Vercel's upload cache) are stable.
"""

import base64
import hashlib
import hmac
import json
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings
from django.urls import reverse

from .config import runtime_config
from .contract import PATH as CONTRACT_PATH

TEMPLATE_DIR = Path(__file__).parent / "nextjs"
WORKER_FILE = "lib/worker.ts"
CONFIG_FILE = "lib/deployment.json"
CONTRACT_FILE = "lib/contract.json"  # deployments/contract.json, which invoke.ts reads
# The project's environment variable holding the key that opens `lib/deployment.json`'s
# secrets; set once on the shared project by the back end (see backends/vercel.py).
SECRETS_KEY_ENV = "WORKERS_SECRETS_KEY"


def template_files() -> dict[str, str]:
    files = {}
    for path in sorted(TEMPLATE_DIR.rglob("*")):
        if path.is_file():
            files[path.relative_to(TEMPLATE_DIR).as_posix()] = path.read_text()
    return files


def secrets_key() -> bytes:
    """The AES-256 key for deployments' secrets on Vercel, derived from SECRET_KEY."""
    return hmac.new(settings.SECRET_KEY.encode(), b"vercel-secrets-key", hashlib.sha256).digest()


def seal_for_vercel(values: dict[str, str]) -> str | None:
    """AES-256-GCM, nonce || ciphertext || tag, base64. The nonce is derived from the content
    (deterministic files); the same plaintext always gives the same file, nothing more leaks."""
    if not values:
        return None
    key = secrets_key()
    plain = json.dumps(values, sort_keys=True).encode()
    nonce = hmac.new(key, plain, hashlib.sha256).digest()[:12]
    return base64.b64encode(nonce + AESGCM(key).encrypt(nonce, plain, None)).decode()


def derived(purpose: str, deployment) -> str:
    """A secret of one deployment for one purpose, derived from SECRET_KEY (nothing stored)."""
    message = f"{purpose}:{deployment.code}".encode()
    return hmac.new(settings.SECRET_KEY.encode(), message, hashlib.sha256).hexdigest()


def ingest_token(deployment) -> str:
    """Lets one generated deployment push its own log lines, and nothing else."""
    return derived("ingest", deployment)


def invoke_secret(deployment) -> str:
    """The secret a caller sends as x-invoke-secret to a private worker's deployment."""
    return "wis_" + derived("invoke", deployment)


def deployment_config(deployment, functions: list[str]) -> dict:
    """The one runtime configuration (deployments.config), with what only a generated
    project needs: where to push its lines, the invocation secret's digest, and its
    secrets sealed instead of in clear."""
    config = runtime_config(deployment)
    env = config.pop("env")
    del config["artifact"]  # the project itself is the artifact
    private = not deployment.worker.public
    config.update(
        functions=list(functions),
        invokeSecretSha256=(
            hashlib.sha256(invoke_secret(deployment).encode()).hexdigest() if private else None
        ),
        ingest={
            "url": settings.PUBLIC_CONTROL_PLANE_URL.rstrip("/")
            + reverse("deployment-ingest", args=[deployment.code]),
            "token": ingest_token(deployment),
        },
        secrets=seal_for_vercel(env),
    )
    return config


def generate(deployment, functions: list[str]) -> dict[str, str]:
    """Path -> content for every file of the project, in path order."""
    files = template_files()
    files[WORKER_FILE] = deployment.program.entry_source
    files[CONTRACT_FILE] = CONTRACT_PATH.read_text()
    files[CONFIG_FILE] = (
        json.dumps(deployment_config(deployment, functions), indent=2, sort_keys=True) + "\n"
    )
    return dict(sorted(files.items()))
