"""The local back end: analyse, type-check and bundle with Deno; the runtime serves it."""

import json
import re
import shlex
import subprocess
import tempfile
from pathlib import Path

from django.conf import settings

from deployments.contract import HEADERS
from deployments.deno import run_deno
from workers.analysis import SOURCE_NAME, clean_deno_output, exported_functions, write_source

from .base import Backend, BuildFailed, BuildResult
from .invoke import post_invoke

# The compiler options tenants' code is held to; quoted in every type-error message.
COMPILER_OPTIONS = {"strict": True, "noImplicitAny": False}
CHECK_RULES = "TypeScript strict mode, except that untyped parameters are allowed"
DIAGNOSTIC = re.compile(r"^(TS\d+) \[ERROR\]: (.*)$")
LOCATION = re.compile(r"^\s+at worker\.ts:(\d+):(\d+)$")
REFERENCE = re.compile(r"^\s*///\s*<reference\b", re.MULTILINE)
IMPORTS_REFUSED = (
    "Imports are not supported: a worker is one self-contained TypeScript module "
    "(the runtime's own APIs, fetch, crypto and the like, need no import)."
)
NO_EXPORTS = (
    "No exported functions found. Export at least one function, for example:\n"
    "  export async function hello(payload: { name?: string }) {\n"
    "    return { greeting: `Hello, ${payload.name ?? 'world'}!` };\n"
    "  }"
)


def summarize_type_errors(output: str) -> list[str]:
    """'worker.ts:2:9 TS2322 Type ... ' lines, one per diagnostic."""
    found, current = [], None
    for line in output.splitlines():
        match = DIAGNOSTIC.match(line)
        if match:
            current = f"{match.group(1)} {match.group(2)}"
            continue
        where = LOCATION.match(line)
        if where and current:
            found.append(f"line {where.group(1)}, column {where.group(2)}: {current}")
            current = None
    return found


def runtime_url_for_host(host: str) -> str:
    port = settings.RUNTIME_PUBLIC_PORT
    default_port = {"http": 80, "https": 443}.get(settings.RUNTIME_PUBLIC_SCHEME)
    suffix = "" if port == default_port else f":{port}"
    return f"{settings.RUNTIME_PUBLIC_SCHEME}://{host}.{settings.RUNTIME_DOMAIN}{suffix}"


def path_url_for_host(host: str) -> str:
    return f"{settings.RUNTIME_URL}/d/{host}"


def curl_line(url: str, function: str, *headers: str) -> str:
    """A copyable curl command, each part quoted for a POSIX shell."""
    parts = ["curl", "-X", "POST", f"{url}/api/invoke/{function}"]
    for header in (*headers, "content-type: application/json"):
        parts += ["-H", header]
    return shlex.join([*parts, "-d", "{}"])


class LocalBackend(Backend):
    name = "local"
    label = "this platform's runtime"

    def url(self, deployment) -> str:
        return runtime_url_for_host(deployment.host)

    def production_url(self, worker) -> str:
        return runtime_url_for_host(worker.host)

    def plain_host_url(self, deployment_or_worker) -> str:
        return path_url_for_host(deployment_or_worker.host)

    def progress(self, deployment) -> str:
        return (
            "Building: finding exported functions, type-checking, bundling… "
            "this page updates by itself."
        )

    def curl(self, deployment, function: str, show_secret: bool) -> str:
        auth = [] if deployment.worker.public else ["Authorization: Bearer <API key>"]
        return curl_line(self.url(deployment), function, *auth)

    def invoke(self, deployment, function: str, payload_json: str):
        # The portal's own credential lets it call private workers and have the call
        # recorded as made from the portal; it is not the one the runtime uses to call us.
        headers = {
            HEADERS["portalToken"]: settings.PORTAL_INVOKE_TOKEN,
            HEADERS["trigger"]: "portal",
        }
        base = path_url_for_host(deployment.host)
        return post_invoke(deployment, base, headers, function, payload_json)

    def build(self, deployment) -> BuildResult:
        log: list[str] = []
        with tempfile.TemporaryDirectory(prefix="build-") as tmp:
            workdir = Path(tmp)
            functions = self.analyse(deployment, workdir, log)
            bundle = self._step(
                log,
                "Bundling",
                [
                    "bundle", "--quiet", "--no-check", "--platform=deno", "--no-remote",
                    "--no-npm", "--config", "deno.json", "-o", "bundle.js", SOURCE_NAME,
                ],
                workdir,
            )  # fmt: skip
            if bundle.returncode != 0 or not (workdir / "bundle.js").exists():
                raise BuildFailed(
                    "Bundling failed: " + clean_deno_output(bundle.stderr), "\n".join(log)
                )
            artifact = (workdir / "bundle.js").read_text()
        log.append(f"Bundle: {len(artifact.encode())} bytes")
        return BuildResult(
            functions=functions,
            artifact=artifact,
            deployment_id=f"local_{deployment.short_id}",
            log=log,
        )

    def analyse(self, deployment, workdir: Path, log: list[str]) -> list[str]:
        """Refuse imports, find the exported functions (no code run) and type-check; the
        same checks on every back end, so a module is held to the same rules everywhere."""
        write_source(workdir, deployment.source)
        (workdir / "deno.json").write_text(json.dumps({"compilerOptions": COMPILER_OPTIONS}))
        self._check_imports(log, deployment.source, workdir)
        doc = self._step(log, "Finding exported functions", ["doc", "--json", SOURCE_NAME], workdir)
        if doc.returncode != 0:
            raise BuildFailed(syntax_error_message(clean_deno_output(doc.stderr)), "\n".join(log))
        functions = exported_functions(doc.stdout)
        if not functions:
            raise BuildFailed(NO_EXPORTS, "\n".join(log))
        log.append(f"Exported functions: {', '.join(functions)}")
        check = self._step(
            log,
            f"Type-checking ({CHECK_RULES})",
            ["check", "--config", "deno.json", "--no-remote", "--no-npm", SOURCE_NAME],
            workdir,
        )
        if check.returncode != 0:
            raise BuildFailed(
                type_error_message(clean_deno_output(check.stdout + check.stderr)), "\n".join(log)
            )
        return functions

    def _check_imports(self, log: list[str], source: str, workdir: Path) -> None:
        """A worker is one self-contained module. Imports are refused before anything reads
        them: the bundler would otherwise copy any file of the build machine into the
        artifact (`import x from "/etc/passwd" with { type: "text" }`)."""
        if REFERENCE.search(source):
            raise BuildFailed(
                IMPORTS_REFUSED + " Remove the `/// <reference …>` line.", "\n".join(log)
            )
        info = self._step(
            log,
            "Checking imports",
            ["info", "--json", "--no-remote", "--no-npm", SOURCE_NAME],
            workdir,
        )
        if info.returncode != 0:
            raise BuildFailed(syntax_error_message(clean_deno_output(info.stderr)), "\n".join(log))
        modules = json.loads(info.stdout).get("modules", [])
        imported = sorted(
            {
                dep.get("specifier", "?")
                for module in modules
                if str(module.get("specifier", "")).endswith("/" + SOURCE_NAME)
                for dep in module.get("dependencies", [])
            }
        )
        if imported or len(modules) > 1:
            listed = ", ".join(imported) or "other modules"
            raise BuildFailed(f"{IMPORTS_REFUSED} This module imports: {listed}.", "\n".join(log))

    def _step(self, log: list[str], title: str, args: list[str], workdir: Path):
        log.append(f"-> {title}")
        try:
            result = run_deno(args, workdir, settings.BUILD_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired as exc:
            raise BuildFailed(
                f"{title} did not finish within {settings.BUILD_TIMEOUT_SECONDS} s.",
                "\n".join(log),
            ) from exc
        output = clean_deno_output(
            result.stderr if args[0] == "doc" else result.stdout + result.stderr
        )
        if output:
            log.append(output)
        return result


def syntax_error_message(output: str) -> str:
    where = re.search(r"at worker\.ts:(\d+):(\d+)", output)
    first = output.splitlines()[0] if output else "The module could not be parsed."
    first = first.removeprefix("error: ")
    if where:
        return (
            f"Syntax error at line {where.group(1)}, column {where.group(2)}: "
            f"{first.removeprefix('SyntaxError: ')}\n\n{output}"
        )
    return f"The module could not be parsed: {first}\n\n{output}"


def type_error_message(output: str) -> str:
    errors = summarize_type_errors(output)
    if not errors:
        return f"Type check failed ({CHECK_RULES}):\n\n{output}"
    listed = "\n".join(f"  {e}" for e in errors)
    plural = "s" if len(errors) != 1 else ""
    return f"{len(errors)} type error{plural} ({CHECK_RULES}):\n{listed}\n\n{output}"
