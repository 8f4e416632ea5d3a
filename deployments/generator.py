"""A deployment -> the files of a Next.js project that serves it on Vercel.

The project is the same for every deployment except the tenant's program and two files:
the program's files go under `lib/worker/` (npm: specifiers rewritten to package names, the
packages declared in package.json at the exact versions its lockfile pinned, and every
package below them pinned with its hash in package-lock.json, deployments.npm_lock), `lib/worker.ts`
re-exports its entry, and `lib/deployment.json` holds its functions, limits, invocation-secret
digest, log ingest address and sealed secrets. `app/[[...path]]/route.ts` sends every path but
/api/invoke/* to the fetch handler. Output is deterministic: the same deployment gives
byte-identical files, so their SHAs (and Vercel's upload cache) are stable.
"""

import hashlib
import hmac
import json
import math
import re
from pathlib import Path

from django.conf import settings
from django.urls import reverse

from workers.addresses import vercel_alias

from . import npm_lock
from .build import CONTEXT_TYPES
from .config import runtime_config, worker_limits
from .contract import PATH as CONTRACT_PATH

TEMPLATE_DIR = Path(__file__).parent / "backends" / "vercel_template"
WORKER_FILE = "lib/worker.ts"
PROGRAM_DIR = "lib/worker/"
# An import's specifier in the tenant's code: `from "x"`, `import "x"`, `import("x")`.
SPECIFIER = re.compile(r"""(\bfrom\s*|\bimport\s*\(?\s*)(["'])([^"'\n]+)\2""")
NPM = re.compile(r"^npm:/?(@[^/@]+/[^/@]+|[^/@]+)(?:@([^/]+))?(/.*)?$")


class NotForNext(ValueError):
    """A program the generated project cannot carry (jsr:/https: imports, two versions of one
    package); the message says what to change."""


CONFIG_FILE = "lib/deployment.json"
VERCEL_FILE = "vercel.json"
ROUTES = ["app/api/invoke/[fn]/route.ts", "app/[[...path]]/route.ts"]
AFTER_ANSWER_SECONDS = 5  # the call's lines and record go out after the answer
MAX_DURATION = re.compile(r"^export const maxDuration = \d+;$", re.M)
CONTRACT_FILE = "lib/contract.json"  # runtime/contract.json, which invoke.ts reads
NPM_LOCK_FILE = "package-lock.json"  # the template's, with the program's packages added


def template_files() -> dict[str, str]:
    files = {}
    for path in sorted(TEMPLATE_DIR.rglob("*")):
        if path.is_file():
            files[path.relative_to(TEMPLATE_DIR).as_posix()] = path.read_text()
    # The platform's types, as the local build gives them (`@functions/context`, tsconfig.json).
    files["lib/context.d.ts"] = CONTEXT_TYPES.read_text()
    return dict(sorted(files.items()))


def derived(purpose: str, deployment) -> str:
    """A secret of one deployment for one purpose, derived from SECRET_KEY (nothing stored)."""
    message = f"{purpose}:{deployment.code}".encode()
    return hmac.new(settings.SECRET_KEY.encode(), message, hashlib.sha256).hexdigest()


def ingest_token(deployment) -> str:
    """Lets one generated deployment push its own log lines, and nothing else."""
    return derived("ingest", deployment)


def signed_run(deployment, run: str) -> str:
    """The run a call is made for, as the platform names it to the deployment (x-run-id):
    signed with the deployment's own credential, so no other caller can name one and write
    to its steps."""
    signature = hmac.new(ingest_token(deployment).encode(), run.encode(), hashlib.sha256)
    return f"{run}.{signature.hexdigest()}"


def invoke_secret(deployment) -> str:
    """The platform's own secret for its calls to the deployment (the portal's, runs'),
    sent as x-invoke-secret: never shown to anyone; with it, a call may name its trigger.
    Callers of a private worker use an API key or one of the worker's own invocation
    secrets (workers.invocation_secrets), which can be rotated and revoked."""
    return "wps_" + derived("invoke", deployment)


def deployment_config(deployment, functions: list[str]) -> dict:
    """The one runtime configuration (deployments.config), with what only a generated
    project needs: where to push its lines, and where it asks who may call it now (access),
    fetches its secrets and checks API keys with its own credential (the ingest token). No
    secret and no key that opens anything but this deployment is in its files or in the
    shared project's environment."""
    config = runtime_config(deployment)
    env = config.pop("env")
    del config["artifact"]  # the project itself is the artifact
    del config["public"]  # asked at call time (accessUrl): it may change after the build
    base = settings.PUBLIC_CONTROL_PLANE_URL.rstrip("/")
    config.update(
        functions=list(functions),
        accessUrl=base + reverse("deployment-access", args=[deployment.code]),
        callsUrl=base + reverse("deployment-calls", args=[deployment.code]),
        # Calls between the tenant's workers stay within one release (lib/peers.ts).
        peerUrl=base + reverse("deployment-peer", args=[deployment.code]),
        aliasDomain=settings.VERCEL_ALIAS_DOMAIN,
        productionHost=vercel_alias(deployment.worker.host),
        ingest={
            "url": base + reverse("deployment-ingest", args=[deployment.code]),
            "token": ingest_token(deployment),
        },
        secretsUrl=base + reverse("deployment-secrets", args=[deployment.code]) if env else None,
        keysUrl=base + reverse("deployment-key", args=[deployment.code, "-"])[:-1],
        runsUrl=base + reverse("deployment-runs", args=[deployment.code]),
        kvUrl=base + reverse("deployment-kv", args=[deployment.code]),
        enqueueUrl=base + reverse("deployment-enqueue", args=[deployment.code]),
        eventsUrl=base + reverse("deployment-events", args=[deployment.code]),
        stepsUrl=base + reverse("deployment-steps", args=[deployment.code]),
    )
    return config


def generate(deployment, functions: list[str], http: bool = False) -> dict[str, str]:
    """Path -> content for every file of the project, in path order."""
    files = template_files()
    program = deployment.program
    versions = pinned_versions(deployment.lockfile)
    packages: dict[str, str] = {}
    for path, text in program.code_files.items():
        files[PROGRAM_DIR + path] = rewrite_imports(text, program.imports, versions, packages)
    entry = "./worker/" + program.entry
    files[WORKER_FILE] = f'export * from "{entry}";\n' + (
        f'export {{ default }} from "{entry}";\n' if http else ""
    )
    if packages:
        package = json.loads(files["package.json"])
        clash = sorted(set(packages) & set(package["dependencies"]))
        if clash:
            raise NotForNext(f"The platform's project uses {', '.join(clash)} itself.")
        package["dependencies"] = dict(sorted({**package["dependencies"], **packages}.items()))
        files["package.json"] = json.dumps(package, indent=2) + "\n"
    try:
        lock = npm_lock.lockfile(json.loads(files[NPM_LOCK_FILE]), deployment.lockfile, packages)
    except npm_lock.LockError as exc:
        raise NotForNext(str(exc)) from exc
    files[NPM_LOCK_FILE] = json.dumps(lock, indent=2) + "\n"
    files[CONTRACT_FILE] = CONTRACT_PATH.read_text()
    seconds, memory = function_limits(deployment)
    for route in ROUTES:
        files[route] = MAX_DURATION.sub(f"export const maxDuration = {seconds};", files[route])
    files[VERCEL_FILE] = json.dumps({
        # Exactly the lockfile's tree (each package checked against its hash), and no
        # package runs its install scripts.
        "installCommand": "npm ci --ignore-scripts --no-audit --no-fund",
        "functions": {route: {"memory": memory} for route in ROUTES},
    }, indent=2, sort_keys=True) + "\n"  # fmt: skip
    config = deployment_config(deployment, functions)
    config["http"] = http
    files[CONFIG_FILE] = json.dumps(config, indent=2, sort_keys=True) + "\n"
    return dict(sorted(files.items()))


def function_limits(deployment) -> tuple[int, int]:
    """The function's maxDuration (s) and memory (MB) for the worker's timeout and memory;
    NotForNext when the Vercel plan allows less (VERCEL_MAX_*)."""
    limits = worker_limits(deployment.worker)
    seconds = math.ceil(limits["timeoutMs"] / 1000) + AFTER_ANSWER_SECONDS
    if seconds > settings.VERCEL_MAX_DURATION_SECONDS:
        most = settings.VERCEL_MAX_DURATION_SECONDS - AFTER_ANSWER_SECONDS
        raise NotForNext(
            f"The worker's timeout ({limits['timeoutMs'] / 1000:g} s) is longer than a function "
            f"may run on this Vercel plan ({most} s at most): lower it, or run the worker on "
            "the platform's own runtime."
        )
    memory = limits["memoryMb"] + settings.VERCEL_SERVER_MEMORY_MB
    memory = max(128, math.ceil(memory / 64) * 64)  # (Vercel's steps)
    if memory > settings.VERCEL_MAX_MEMORY_MB:
        raise NotForNext(
            f"The worker's memory ({limits['memoryMb']} MB) and the function's server "
            f"({settings.VERCEL_SERVER_MEMORY_MB} MB) need more than this Vercel plan allows "
            f"({settings.VERCEL_MAX_MEMORY_MB} MB): lower it, or run the worker on the "
            "platform's own runtime."
        )
    return seconds, memory


def pinned_versions(lockfile: str) -> dict[str, str]:
    """'npm:zod@^3' -> '3.23.8': what each npm specifier resolved to, from Deno's lockfile."""
    lock = json.loads(lockfile) if lockfile else {}
    return {
        k: v.split("_")[0] for k, v in lock.get("specifiers", {}).items() if k.startswith("npm:")
    }


def rewrite_imports(text: str, imports: dict, versions: dict, packages: dict) -> str:
    """npm:name@range/sub -> name/sub, recording name -> the pinned version in `packages`."""

    def one(match: re.Match) -> str:
        head, quote, spec = match.groups()
        target = imports.get(spec) or next(
            (
                imports[k] + spec[len(k) :]
                for k in imports
                if k.endswith("/") and spec.startswith(k)
            ),
            spec,
        )
        if target.startswith(("jsr:", "https:", "http:")):
            raise NotForNext(
                f"{spec}: jsr: and https: imports run on this platform's own runtime only; on "
                "the Vercel back end use npm packages."
            )
        found = NPM.match(target)
        if not found:
            return match.group(0)
        name, rng, sub = found.group(1), found.group(2) or "latest", found.group(3) or ""
        version = versions.get(f"npm:{name}@{rng}") or versions.get(f"npm:{name}")
        if version is None:
            version = next((v for k, v in versions.items() if k.startswith(f"npm:{name}@")), rng)
        if packages.setdefault(name, version) != version:
            raise NotForNext(
                f"Two versions of {name} ({packages[name]} and {version}): the Vercel back "
                "end installs one version of each package."
            )
        return f"{head}{quote}{name}{sub}{quote}"

    return SPECIFIER.sub(one, text)
