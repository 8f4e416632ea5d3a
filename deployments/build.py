"""Building a worker's program into one JavaScript module, the same on every back end.

The build reads only what the tenant uploaded and fetches only from the package registries:

* The uploaded files are written under `app/` of a fresh directory, beside the build's own
  configuration (never the tenant's: their deno.json and package.json are read for the entry
  and the import map only, see program.py).
* An import map guards the file system: every `file:` URL outside `app/` is mapped into a
  directory that does not exist, so `/etc/hostname`, `../x` or `file:///…` are never read;
  they fail as "not found" and are reported as outside the upload.
* Remote modules come only from the hosts in BUILD_IMPORT_HOSTS (`--allow-import`); npm
  packages from the npm registry, their install scripts never run (Deno runs none unless
  told to).
* The bundle's own list of the files it took in is checked again after bundling (an npm
  package's imports do not pass through the tenant's import map).
* The bundle is loaded once in a process with no permissions to measure its startup CPU
  time and to check its default export, before it can become production.

Packages are pinned in a lockfile kept with the deployment; a later build starts from the
previous deployment's lock, so the same files give the same artifact until the tenant asks
for an update. The npm cache (DENO_DIR) is shared by all builds.
"""

import base64
import json
import re
import secrets
import subprocess
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings

from . import build_cache, checker, confine
from .deno import StepLimit, bundler_ready, deno_bin, deno_env, run_deno
from .errors import BuildFailed
from .program import Program

APP = "app"
OUTSIDE = "__outside_the_upload__"
# Named as Deno looks for it: the warm type checker finds each build's configuration so.
CONFIG = "deno.json"
LOCK = "deno.lock"
BUNDLE = "bundle.js"
CONTEXT_SPECIFIER = "@functions/context"
CONTEXT_FILE = "context.d.ts"
CONTEXT_TYPES = Path(__file__).resolve().parents[1] / "runtime" / CONTEXT_FILE
# The compiler options tenants' code is held to; quoted in every type-error message.
COMPILER_OPTIONS = {"strict": True, "noImplicitAny": False}
CHECK_RULES = "TypeScript strict mode, except that untyped parameters are allowed"
DIAGNOSTIC = re.compile(r"^(TS\d+) \[ERROR\]: (.*)$")
LOCATION = re.compile(r"^\s+at (\S+?):(\d+):(\d+)$")
NO_EXPORTS = (
    "No exported functions and no fetch handler found. Export at least one function, for "
    "example:\n"
    "  export async function hello(payload: { name?: string }) {\n"
    "    return { greeting: `Hello, ${payload.name ?? 'world'}!` };\n"
    "  }\n"
    "or a default export with a fetch handler:\n"
    '  export default { fetch: (request: Request) => new Response("Hello") };'
)
ALLOWED_IMPORTS = (
    "a worker imports its own files (./…), npm: and node: modules, jsr: packages and https: "
    "modules from {hosts}"
)


@dataclass
class Built:
    functions: list[str]
    http: bool
    artifact: str
    lockfile: str
    log: list[str] = field(default_factory=list)


class Workspace:
    """One build's directory: the upload under app/, our configuration beside it."""

    def __init__(self, root: Path, program: Program, lockfile: str, log: list[str], on_step=None):
        self.root, self.program, self.log = root, program, log
        self.on_step = on_step
        self.app = root / APP
        self.modules: list[Path] = []  # the upload's files in the module graph (check_graph)
        for path, text in program.code_files.items():
            target = self.app / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
        if lockfile:
            (root / LOCK).write_text(lockfile)
        app_url = self.app.as_uri()
        imports = {
            name: (f"{app_url}/{target[2:]}" if target.startswith("./") else target)
            for name, target in program.imports.items()
        }
        # Longest prefix wins: the upload's own files map to themselves, every other file
        # of this machine into a directory that does not exist.
        imports["file:///"] = f"{root.as_uri()}/{OUTSIDE}/"
        imports[f"{app_url}/"] = f"{app_url}/"
        # The platform's types (`import type { Context } from "@functions/context"`).
        (root / CONTEXT_FILE).write_text(CONTEXT_TYPES.read_text())
        imports[CONTEXT_SPECIFIER] = f"{root.as_uri()}/{CONTEXT_FILE}"
        config = {
            "imports": imports,
            "compilerOptions": COMPILER_OPTIONS,
            "nodeModulesDir": "none",
            "lock": {"path": f"./{LOCK}", "frozen": False},
        }
        (root / CONFIG).write_text(json.dumps(config, indent=2))

    @property
    def entry(self) -> str:
        return f"{APP}/{self.program.entry}"

    def clean(self, text: str) -> str:
        """Deno's output with our directories taken out: paths as the tenant knows them."""
        text = text.replace(f"{self.root.as_uri()}/{OUTSIDE}", "file://")
        text = text.replace(self.app.as_uri() + "/", "").replace(str(self.app) + "/", "")
        text = text.replace(self.root.as_uri(), "").replace(str(self.root), "")
        text = text.replace(str(settings.DENO_DIR), "<package cache>")
        if text.startswith("Warning") and "\nerror: " in text:
            text = text[text.index("\nerror: ") + 1 :]  # a syntax error is printed twice
        lines = [
            line.rstrip()
            for line in text.splitlines()
            if not line.startswith(("Stack backtrace", "   0: <unknown>", "Check ", "Download "))
            # hints name the tool's own commands, which tenants do not have
            and not (line.lstrip().startswith("hint:") and "deno" in line.lower())
        ]
        return "\n".join(lines).strip()

    def begin(self, title: str) -> None:
        """A step starts: in the build log, and told to whoever watches (the deployment's
        build step, which the API and the CLI show while it runs)."""
        self.log.append(f"-> {title}")
        if self.on_step is not None:
            self.on_step(title)

    def step(self, title: str, args: list[str]):
        self.begin(title)
        return self.run(title, args)

    def run(self, title: str, args: list[str]):
        """A Deno step without telling it (one begun already, run beside another)."""
        imports = ",".join(f"{h}:443" for h in settings.BUILD_IMPORT_HOSTS) or "none.invalid:1"
        if args[0] in ("info", "check", "bundle"):
            args = [args[0], "--config", CONFIG, f"--allow-import={imports}", *args[1:]]
        elif args[0] == "doc":  # doc reads the import map only when it is given as one
            args = ["doc", "--no-config", "--no-lock", "--import-map", CONFIG,
                    f"--allow-import={imports}", *args[1:]]  # fmt: skip
        try:
            return run_deno(args, self.root, settings.BUILD_TIMEOUT_SECONDS)
        except StepLimit as exc:
            raise self.stopped(title, exc) from exc

    def stopped(self, title: str, limit: StepLimit) -> BuildFailed:
        if limit.limit == "memory":
            return self.failed(
                f"{title} needed more than the build's {settings.BUILD_STEP_MEMORY_MB} MB "
                "of memory and was stopped (a very large program or package graph)."
            )
        if limit.limit == "output":
            return self.failed(
                f"{title} wrote more than {confine.MAX_OUTPUT_BYTES // 2**20} MB of output and "
                "was stopped (a very large program or package graph)."
            )
        return self.failed(f"{title} did not finish within {settings.BUILD_TIMEOUT_SECONDS} s.")

    @property
    def lock(self) -> str:
        """The lockfile as the build left it: the packages it resolved, pinned."""
        path = self.root / LOCK
        return path.read_text() if path.exists() else ""

    def failed(self, message: str, diagnostics: list[dict] | None = None) -> BuildFailed:
        return BuildFailed(message, "\n".join(self.log), diagnostics)


def build_program(
    program: Program,
    lockfile: str = "",
    env: dict | None = None,
    memory_mb: int = 128,
    on_step=None,
) -> Built:
    """Checks, type-checks, bundles and loads once; raises BuildFailed with the tenant's fix.
    The same inputs built before successfully give that build's result (build_cache.py)."""
    build_key = build_cache.key(program, lockfile, env or {}, memory_mb)
    reused = build_cache.find(build_key, lockfile)
    if reused is not None:
        if on_step is not None:
            on_step("Reusing the build of the same files")
        return Built(**reused)
    built = _build(program, lockfile, env, memory_mb, on_step)
    keys = [build_key]
    if built.lockfile != lockfile:
        # Built again from the lockfile it made (a redeploy), it gives the same result.
        keys.append(build_cache.key(program, built.lockfile, env or {}, memory_mb))
    build_cache.store(keys, built)
    return built


def _build(program: Program, lockfile: str, env: dict | None, memory_mb: int, on_step) -> Built:
    """The graph first (it fetches the packages every later step reads); then the type check,
    the longest step, beside the rest (exports, bundle, startup probe), which reads nothing
    the check writes. The tenant hears the same first problem as if they ran one by one: no
    exports, then type errors, then the bundle's or the probe's."""
    log: list[str] = []
    with checker.workspace() as tmp:
        ws = Workspace(Path(tmp), program, lockfile, log, on_step)
        check_graph(ws)
        with ThreadPoolExecutor(max_workers=1) as beside:
            typed = beside.submit(check_types, ws)
            ws.begin(TYPE_CHECK)
            functions, has_default = find_exports(ws)
            if not functions and not has_default:
                raise ws.failed(NO_EXPORTS)
            later: BuildFailed | None = None
            try:
                artifact = bundle(ws)
                http = probe(ws, env or {}, memory_mb, has_default)
            except BuildFailed as exc:
                later = exc
            if not typed.done() and on_step is not None:
                on_step(TYPE_CHECK)  # what the build still waits for
            judge_types(ws, typed.result())
        if later is not None:
            raise later
        lock = ws.lock
    log.append(f"Bundle: {len(artifact.encode())} bytes")
    return Built(functions=functions, http=http, artifact=artifact, lockfile=lock, log=log)


def analyse_program(program: Program, lockfile: str = "") -> tuple[list[str], bool, str, list[str]]:
    """The checks without bundling (the Vercel back end builds remotely): the functions,
    whether there is a default export, the lockfile the packages resolved to, the log."""
    log: list[str] = []
    with checker.workspace() as tmp:
        ws = Workspace(Path(tmp), program, lockfile, log)
        functions, has_default = checked(ws)
        return functions, has_default, ws.lock, log


def checked(ws: Workspace) -> tuple[list[str], bool]:
    """The checks every back end runs: the graph, the exports (something to serve, before any
    compiling), the types."""
    check_graph(ws)
    functions, has_default = find_exports(ws)
    if not functions and not has_default:
        raise ws.failed(NO_EXPORTS)
    type_check(ws)
    return functions, has_default


# --- the module graph ---------------------------------------------------------------------


def check_graph(ws: Workspace) -> None:
    """Every import is resolved (packages fetched into the shared cache) and judged before
    anything is compiled: files outside the upload, unknown packages and versions, hosts
    that are not allowed or cannot be reached each get their own message."""
    info = ws.step("Resolving imports and packages", ["info", "--json", ws.entry])
    if info.returncode != 0:
        output = ws.clean(info.stderr)
        raise ws.failed(syntax_error_message(output), syntax_diagnostics(output))
    graph = json.loads(info.stdout)
    written: dict[str, tuple[str, str]] = {}  # resolved specifier -> (importing file, as written)
    for module in graph.get("modules", []):
        for dep in module.get("dependencies", []):
            for kind in ("code", "type"):
                resolved = (dep.get(kind) or {}).get("specifier")
                if resolved:
                    written.setdefault(resolved, (module["specifier"], dep["specifier"]))
    problems, diagnostics = [], []
    ws.modules = [
        Path(urllib.parse.unquote(url.removeprefix("file://")))
        for module in graph.get("modules", [])
        if (url := module.get("specifier", "")).startswith(ws.app.as_uri() + "/")
    ]
    for module in graph.get("modules", []):
        specifier, error = module.get("specifier", ""), module.get("error")
        by, as_written = written.get(specifier, ("", specifier))
        where = f"{ws.clean(by) or ws.program.entry} imports {as_written!r}"
        if OUTSIDE in specifier:
            problems.append(
                f"{where}, a file outside the uploaded files: "
                + ALLOWED_IMPORTS.format(hosts=_hosts())
                + "."
            )
        elif error and specifier.startswith(ws.app.as_uri()) and "Module not found" not in error:
            problems.append(syntax_error_message(ws.clean(error)))
            diagnostics += syntax_diagnostics(ws.clean(error))
        elif error:
            problems.append(f"{where}: {explain(ws.clean(error), specifier)}")
    if problems:
        raise ws.failed("\n".join(dict.fromkeys(problems)), diagnostics)
    npm = graph.get("npmPackages") or {}
    if npm:
        ws.log.append("Packages: " + ", ".join(sorted(npm)))


def _hosts() -> str:
    return ", ".join(settings.BUILD_IMPORT_HOSTS) or "no host (remote imports are off)"


def explain(error: str, specifier: str) -> str:
    if match := re.search(r"npm package '([^']+)' does not exist", error):
        return f"the package {match.group(1)} does not exist in the npm registry."
    if match := re.search(r"Could not find npm package '([^']+)' matching '([^']+)'", error):
        return f"no version of the package {match.group(1)} matches {match.group(2)}."
    if "Requires import access" in error:
        host = re.search(r'"([^"]+)"', error)
        return (
            f"imports from {host.group(1) if host else 'that host'} are not allowed; "
            + ALLOWED_IMPORTS.format(hosts=_hosts())
            + "."
        )
    if specifier.startswith("jsr:") or "JSR package" in error:
        return (
            "the JSR registry (jsr.io) could not be reached from this platform's build "
            f"machines, so {specifier} cannot be fetched ({error})"
        )
    if specifier.startswith(("https:", "http:")) and "failed" in error:
        return f"{specifier} could not be fetched: its host cannot be reached or answered an error."
    if "Module not found" in error:
        return "no such file among the uploaded files."
    if "npm" in error and ("fetch" in error.lower() or "connect" in error.lower()):
        return f"the npm registry could not be reached ({error})"
    return error


# --- exports and types --------------------------------------------------------------------


def find_exports(ws: Workspace) -> tuple[list[str], bool]:
    """The entry's exported functions (read, never run) and whether it has a default export."""
    doc = ws.step("Finding exported functions", ["doc", "--json", ws.entry])
    if doc.returncode != 0:
        output = ws.clean(doc.stderr)
        raise ws.failed(syntax_error_message(output), syntax_diagnostics(output))
    data = json.loads(doc.stdout)
    nodes: Any = data.get("nodes", data) if isinstance(data, dict) else data
    entry_url = (ws.app / ws.program.entry).as_uri()
    symbols: list[dict] = []
    if isinstance(nodes, dict):  # {url: {symbols: [...]}}: only the entry's exports count
        found: Any = nodes.get(entry_url) or next(iter(nodes.values()), {})
        symbols = found.get("symbols", [])
    names, has_default = [], False
    for symbol in symbols:
        name = symbol.get("name")
        if name == "default" or symbol.get("isDefault"):
            has_default = True
            continue
        for decl in symbol.get("declarations", []):
            if decl.get("declarationKind") == "export" and decl.get("kind") == "function":
                names.append(name)
                break
    functions = list(dict.fromkeys(n for n in names if n))
    if functions:
        ws.log.append(f"Exported functions: {', '.join(functions)}")
    if has_default:
        ws.log.append("Default export: the fetch handler for HTTP requests")
    return functions, has_default


TYPE_CHECK = f"Type-checking ({CHECK_RULES})"


def type_check(ws: Workspace) -> None:
    ws.begin(TYPE_CHECK)
    judge_types(ws, check_types(ws))


# Files that configure Deno wherever they are: the warm checker would read one in the upload
# as the configuration of its directory, where `deno check --config` reads only ours.
CONFIGURING = {"deno.json", "deno.jsonc", "package.json", "tsconfig.json", "jsconfig.json",
               "deno.lock", ".npmrc", "node_modules"}  # fmt: skip


def check_types(ws: Workspace) -> subprocess.CompletedProcess:
    """The type check's report, as `deno check` gives it: from the warm checker when it can
    answer (checker.py), from `deno check` itself when not."""
    uploaded = {part for path in ws.program.code_files for part in Path(path).parts}
    if settings.BUILD_WARM_CHECKER and not uploaded & CONFIGURING:
        try:
            found = checker.check(ws.root / CONFIG, ws.modules, settings.BUILD_TIMEOUT_SECONDS)
        except StepLimit as exc:
            raise ws.stopped(TYPE_CHECK, exc) from exc
        if found is not None:
            report = checker.as_deno_check(found) if found else ""
            return subprocess.CompletedProcess(["check"], 1 if found else 0, report, "")
    return ws.run(TYPE_CHECK, ["check", ws.entry])


def judge_types(ws: Workspace, check) -> None:
    if check.returncode != 0:
        output = ws.clean(check.stdout + check.stderr)
        raise ws.failed(type_error_message(output), type_diagnostics(output))


def type_diagnostics(output: str) -> list[dict]:
    """Each diagnostic of the type checker: its file, line, column and message."""
    found, current = [], None
    for line in output.splitlines():
        match = DIAGNOSTIC.match(line)
        if match:
            current = f"{match.group(1)} {match.group(2)}"
            continue
        where = LOCATION.match(line)
        if where and current:
            file, row, column = where.group(1), int(where.group(2)), int(where.group(3))
            found.append({"file": file, "line": row, "column": column, "message": current})
            current = None
    return found


def summarize_type_errors(output: str) -> list[str]:
    """'lib/a.ts, line 2, column 9: TS2322 …' lines, one per diagnostic."""
    return [
        f"{d['file']}, line {d['line']}, column {d['column']}: {d['message']}"
        for d in type_diagnostics(output)
    ]


def type_error_message(output: str) -> str:
    errors = summarize_type_errors(output)
    if not errors:
        return f"Type check failed ({CHECK_RULES}):\n\n{output}"
    listed = "\n".join(f"  {e}" for e in errors)
    plural = "s" if len(errors) != 1 else ""
    return f"{len(errors)} type error{plural} ({CHECK_RULES}):\n{listed}\n\n{output}"


def syntax_diagnostics(output: str) -> list[dict]:
    where = re.search(r"at (\S+?\.[cm]?[jt]sx?):(\d+):(\d+)", output)
    if not where:
        return []
    first = (output.splitlines() or [""])[0].removeprefix("error: ").removeprefix("SyntaxError: ")
    return [
        {"file": where.group(1), "line": int(where.group(2)), "column": int(where.group(3)),
         "message": first}
    ]  # fmt: skip


def syntax_error_message(output: str) -> str:
    where = re.search(r"at (\S+?\.[cm]?[jt]sx?):(\d+):(\d+)", output)
    first = output.splitlines()[0] if output else "The module could not be parsed."
    first = first.removeprefix("error: ")
    if where:
        return (
            f"Syntax error in {where.group(1)} at line {where.group(2)}, column "
            f"{where.group(3)}: {first.removeprefix('SyntaxError: ')}\n\n{output}"
        )
    return f"The module could not be parsed: {first}\n\n{output}"


# --- bundling -----------------------------------------------------------------------------

# esbuild names each module it took in on a comment line above its code.
SOURCE_COMMENT = re.compile(r"^// (\S.*)$", re.MULTILINE)


def bundle(ws: Workspace) -> str:
    with bundler_ready():
        result = ws.step(
            "Bundling",
            ["bundle", "--quiet", "--no-check", "--platform=deno", "--sourcemap=external",
             "-o", BUNDLE, ws.entry],
        )  # fmt: skip
    out = ws.root / BUNDLE
    if result.returncode != 0 or not out.exists():
        raise ws.failed("Bundling failed: " + ws.clean(result.stderr))
    code = out.read_text()
    if (ws.root / (BUNDLE + ".map")).exists():  # for the startup probe's stack traces
        out.write_text(code + f"\n//# sourceMappingURL={BUNDLE}.map\n")
    cache = Path(settings.DENO_DIR).resolve()

    def judged(match: re.Match) -> str:
        name = match.group(1)
        path = (ws.root / name).resolve()
        if path.is_relative_to(ws.app.resolve()):
            return f"// {path.relative_to(ws.app.resolve()).as_posix()}"
        if path.is_relative_to(cache):
            return f"// {path.relative_to(cache).as_posix()}"  # npm/registry.npmjs.org/…
        if path.exists():
            raise ws.failed(
                f"A package imports {name!r}, a file of the build machine outside the upload "
                "and the package cache; the build was stopped."
            )
        return match.group(0)

    code = SOURCE_COMMENT.sub(judged, code)
    mapped = source_map(ws, ws.root / (BUNDLE + ".map"), cache)
    # Bundled CommonJS packages make `require` from the module's own URL; the runtime loads
    # the artifact from memory, which no `require` could start from: give it a fixed one.
    code = code.replace(
        "__deno_internal_createRequire(import.meta.url)",
        '__deno_internal_createRequire("file:///worker/bundle.js")',
    )
    size = len(code.encode())
    if size > settings.MAX_ARTIFACT_BYTES:
        raise ws.failed(
            f"The bundle is {size:,} bytes, over the limit of {settings.MAX_ARTIFACT_BYTES:,} "
            "bytes: drop or replace its largest packages."
        )
    if mapped and size + len(mapped) <= settings.MAX_ARTIFACT_BYTES:
        # Last, on a line of its own: the runtime reads it to name the tenant's files in
        # stack traces (isolate.js), and line and column numbers above it do not move.
        code = code.rstrip("\n") + "\n" + SOURCE_MAP_PREFIX + mapped + "\n"
    return code


# Not `//# sourceMappingURL=`: Deno would map the positions itself but keep naming the file
# by the blob: URL the runtime loads it from; the runtime maps positions and names together.
SOURCE_MAP_PREFIX = "//# functions-source-map="


def source_map(ws: Workspace, path: Path, cache: Path) -> str:
    """The bundle's source map, base64, kept small: its mappings and the files they point
    into named as the tenant knows them (the upload's own paths, `npm/...` for packages),
    without their text. "" when there is none."""
    if not path.exists():
        return ""
    raw = json.loads(path.read_text())
    app = ws.app.resolve()

    def named(source: str) -> str:
        where = (path.parent / source).resolve()
        if where.is_relative_to(app):
            return where.relative_to(app).as_posix()
        if where.is_relative_to(cache):
            return where.relative_to(cache).as_posix()
        return where.name

    small = {
        "version": 3,
        "sources": [named(source) for source in raw.get("sources", [])],
        "names": [],
        "mappings": raw.get("mappings", ""),
    }
    return base64.b64encode(json.dumps(small, separators=(",", ":")).encode()).decode()


# --- the startup probe --------------------------------------------------------------------

PROBE = """
// The report goes out with a nonce the module cannot know (it came on stdin, read before the
// module is imported): a module that prints a report of its own and exits forges nothing.
const given = JSON.parse(await new Response(Deno.stdin.readable).text());
const nonce = given.nonce;
Object.defineProperty(globalThis.process, "env", { value: Object.freeze(given.env), configurable: true });
// Waiting on the network is not the module's fault here: a top-level fetch waits forever.
let fetching = 0;
globalThis.fetch = () => { fetching++; return new Promise(() => {}); };
const cpu = () => { const u = process.cpuUsage(); return (u.user + u.system) / 1000; };
const LIMIT = Number(Deno.args[0]), WAIT = Number(Deno.args[1]), start = cpu(), began = performance.now();
const write = Deno.stderr.writeSync.bind(Deno.stderr), exit = Deno.exit, encoder = new TextEncoder();
const tell = (o) => { write(encoder.encode("\\u0001" + nonce + JSON.stringify(o) + "\\n")); exit(0); };
const timer = setInterval(() => {
  const used = cpu() - start, waited = performance.now() - began;
  if (used > LIMIT) tell({ over: used });
  if (waited > LIMIT && fetching) tell({ waiting: true, cpuMs: used });
  if (waited > WAIT) tell({ never: true, cpuMs: used });
}, 20);
try {
  const mod = await import("./bundle.js");
  const d = mod.default;
  const kind = d === undefined ? "none" : typeof d?.fetch === "function" ? "fetch" : typeof d;
  clearInterval(timer);
  tell({ loaded: true, cpuMs: cpu() - start, default: kind });
} catch (err) {
  // Where it threw: the frames in the program's files (source-mapped: bundle.js names its map).
  const frames = String(err?.stack ?? "").split("\\n").filter((l) => l.startsWith("    at ") && !l.includes("probe.js"));
  tell({ error: `${err?.name ?? "Error"}: ${err?.message ?? err}`, frames: frames.slice(0, 10) });
}
"""
# What a Deno process takes before the module's own memory (measured: ~60 MB resident).
PROBE_BASE_MB = 160
PROBE_WAIT_MS = 5_000  # a top level that awaits longer than this, on no fetch, never finishes
PROBE_OUTPUT_BYTES = 1024 * 1024  # what its top level may print, on each of stdout and stderr


def probe(ws: Workspace, env: dict, memory_mb: int, has_default: bool) -> bool:
    """Loads the bundle once in a confined process with no permissions (confine.py: memory,
    processes, CPU); True if it has a fetch handler. A top level that keeps the CPU past
    STARTUP_CPU_MS, holds more than the deployment's memory or never finishes fails the build,
    saying which limit it met."""
    limit = settings.STARTUP_CPU_MS
    (ws.root / "probe.js").write_text(PROBE)
    ws.begin(f"Loading the module once (startup limit: {limit} ms of CPU)")
    args = [
        deno_bin(), "run", "--no-prompt", "--no-config", "--no-lock", "--no-remote", "--no-npm",
        f"--v8-flags=--max-old-space-size={memory_mb}", "probe.js", str(limit), str(PROBE_WAIT_MS),
    ]  # fmt: skip
    wall = max(limit / 1000 * 2, PROBE_WAIT_MS / 1000) + 3  # deno's own start, a shared CPU
    nonce = secrets.token_hex(16)
    bounds = confine.Limits(
        memory_bytes=(memory_mb + PROBE_BASE_MB) * 1024 * 1024,
        pids=64,
        cpus=1.0,
        cpu_seconds=int(wall) + 1,
    )
    result = confine.run(
        args,
        bounds,
        wall,
        cwd=ws.root,
        env=deno_env(),
        input=json.dumps({"env": env, "nonce": nonce}),
        max_output=PROBE_OUTPUT_BYTES,
    )
    if result.limit == "output":
        raise ws.failed(
            f"The module's top level wrote more than {PROBE_OUTPUT_BYTES // 2**20} MB to its "
            "output while loading and was stopped: print less outside the exported functions."
        )
    if result.limit == "memory":
        raise ws.failed(
            f"The module's top level held more memory than the deployment's {memory_mb} MB "
            f"while loading (with the runtime's own {PROBE_BASE_MB} MB) and was stopped: "
            "make large data on the first call instead, or ask for a larger memory limit."
        )
    if result.limit in ("time", "cpu"):
        raise ws.failed(_too_slow(limit))
    marker = "\x01" + nonce
    report = next(
        (
            json.loads(line[len(marker) :])
            for line in reversed(result.stderr.splitlines())
            if line.startswith(marker)
        ),
        None,
    )
    if report is None:
        raise ws.failed(
            "The module failed to load: it stopped the process that loaded it "
            f"(exit code {result.returncode}) before it finished loading."
        )
    if "over" in report:
        raise ws.failed(_too_slow(limit))
    if "error" in report:
        where = "".join("\n" + ws.clean(frame) for frame in report.get("frames", []))
        raise ws.failed(f"The module failed to load: {ws.clean(report['error'])}{where}")
    if report.get("never"):
        raise ws.failed(
            f"The module's top level did not finish loading within {PROBE_WAIT_MS // 1000} s: "
            "it waits for something that never comes (a promise never settled, a timer far "
            "off). Do that waiting inside a function instead."
        )
    if report.get("waiting"):
        ws.log.append("The module waits on the network at its top level; startup not judged.")
        return has_default
    ws.log.append(f"Loaded in {report['cpuMs']:.0f} ms of CPU")
    kind = report.get("default", "none")
    if kind not in ("none", "fetch"):
        raise ws.failed(
            f"The default export is a {kind}, not a fetch handler: export "
            "`default { fetch(request) { … } }` (or remove the default export)."
        )
    return kind == "fetch"


def _too_slow(limit: int) -> str:
    return (
        f"The module's top level did not finish loading within the startup limit of {limit} ms "
        "of CPU time (a loop that never ends, or heavy work outside the exported functions). "
        "Move the work into a function, or do it on the first call."
    )
