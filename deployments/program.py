"""A worker's program as the tenant uploads it: a set of text files and an entry module.

Everything that takes files from a tenant (the JSON API, a .tar.gz, the portal's upload,
`manage.py deploy <dir>`) comes through `program_from_files`, so the same paths are refused
everywhere and the build only ever sees clean relative paths.
"""

import json
import posixpath
import re
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings

DEFAULT_ENTRY = "index.ts"
ENTRY_CANDIDATES = ("index.ts", "index.tsx", "index.js", "main.ts", "mod.ts", "worker.ts")
CODE_SUFFIXES = (".ts", ".tsx", ".mts", ".js", ".mjs", ".jsx")
# Files that configure the build; read for the entry and the dependencies, never bundled.
CONFIG_FILES = ("deno.json", "deno.jsonc", "package.json")
PATH_PART = re.compile(r"^[A-Za-z0-9_@][A-Za-z0-9_.@+=,-]*$")
MAX_DEPTH = 10
UNPACK = Path(__file__).with_name("unpack.py")
UNPACK_SECONDS = 15  # wall time, waiting included
UNPACK_CPU_SECONDS = 5
UNPACK_MEMORY_BYTES = 256 * 1024 * 1024  # plus a few times the archive and the limit


class ProgramError(ValueError):
    """The upload cannot be a worker; the message says what to change."""


class ProgramTooLarge(ProgramError):
    """Over a size or count limit."""


@dataclass(frozen=True)
class Program:
    files: dict[str, str]
    entry: str
    # Bare names the upload maps to packages or its own files (deno.json "imports" and
    # package.json "dependencies"), checked: no file outside the upload, no other host.
    imports: dict[str, str] = field(default_factory=dict)

    @property
    def entry_source(self) -> str:
        return self.files[self.entry]

    @property
    def code_files(self) -> dict[str, str]:
        return {p: t for p, t in self.files.items() if p not in CONFIG_FILES}


def clean_path(path: str) -> str:
    """'src/./a.ts' -> 'src/a.ts'; refuses what could leave the upload or confuse a shell."""
    if not isinstance(path, str) or not path:
        raise ProgramError("A file has an empty path.")
    if "\\" in path or "\x00" in path:
        raise ProgramError(f"{path!r}: use forward slashes, and no NUL characters, in paths.")
    if path.startswith("/"):
        raise ProgramError(f"{path!r}: paths are relative to the worker's root, not absolute.")
    parts = [p for p in path.split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts):
        raise ProgramError(f"{path!r}: '..' would leave the worker's files.")
    if not parts or len(parts) > MAX_DEPTH:
        raise ProgramError(f"{path!r}: a path has 1 to {MAX_DEPTH} parts.")
    for part in parts:
        if not PATH_PART.match(part) or len(part) > 100:
            raise ProgramError(
                f"{path!r}: each part of a path is letters, digits and _ . @ + = , - "
                "(not starting with a dot or a dash), at most 100 characters."
            )
    return "/".join(parts)


def program_from_files(files: dict[str, str], entry: str | None = None) -> Program:
    if not isinstance(files, dict) or not files:
        raise ProgramError("No files: send at least the entry module (index.ts).")
    if len(files) > settings.MAX_PROGRAM_FILES:
        raise ProgramTooLarge(
            f"{len(files)} files: a worker has at most {settings.MAX_PROGRAM_FILES} files."
        )
    clean: dict[str, str] = {}
    total = 0
    for path, text in files.items():
        name = clean_path(path)
        if name in clean:
            raise ProgramError(f"{path!r} is given twice.")
        if not isinstance(text, str):
            raise ProgramError(f"{name}: a file's content is text.")
        if "\x00" in text:
            raise ProgramError(f"{name} contains a NUL character: only text files are accepted.")
        total += len(text.encode())
        clean[name] = text
    if total > settings.MAX_SOURCE_BYTES:
        raise ProgramTooLarge(
            f"The files hold {total} bytes: the limit is {settings.MAX_SOURCE_BYTES} bytes."
        )
    if not any(p.endswith(CODE_SUFFIXES) for p in clean):
        raise ProgramError("No code: the upload has no .ts or .js file.")
    clean = dict(sorted(clean.items()))
    config = _read_config(clean)
    chosen = _entry(clean, entry, config)
    return Program(files=clean, entry=chosen, imports=_imports(config))


def program_from_source(source: str) -> Program:
    """One module pasted or sent as `code`: the whole program, as index.ts."""
    return program_from_files({DEFAULT_ENTRY: source}, DEFAULT_ENTRY)


def _read_config(files: dict[str, str]) -> dict[str, dict]:
    found = {}
    for name in CONFIG_FILES:
        if name in files:
            try:
                value = json.loads(_strip_jsonc(files[name]) if name.endswith("c") else files[name])
            except json.JSONDecodeError as exc:
                raise ProgramError(f"{name} is not valid JSON: {exc}") from exc
            if not isinstance(value, dict):
                raise ProgramError(f"{name} must hold a JSON object.")
            found[name.replace(".jsonc", ".json")] = value
    return found


def _strip_jsonc(text: str) -> str:
    """deno.jsonc: comments out (line and block, outside strings), trailing commas kept out."""
    out, i, in_string = [], 0, False
    while i < len(text):
        c = text[i]
        if in_string:
            out.append(c)
            if c == "\\" and i + 1 < len(text):
                out.append(text[i + 1])
                i += 1
            elif c == '"':
                in_string = False
        elif c == '"':
            in_string = True
            out.append(c)
        elif text.startswith("//", i):
            i = text.find("\n", i)
            i = len(text) if i < 0 else i
            continue
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            i = len(text) if end < 0 else end + 2
            continue
        else:
            out.append(c)
        i += 1
    return re.sub(r",(\s*[}\]])", r"\1", "".join(out))


def _entry(files: dict[str, str], entry: str | None, config: dict[str, dict]) -> str:
    if entry:
        named, why = clean_path(entry), "the entry you named"
    elif isinstance(main := _declared_entry(config), tuple):
        named, why = main
    else:
        named = next((c for c in ENTRY_CANDIDATES if c in files), None)
        code = [p for p in files if p.endswith(CODE_SUFFIXES)]
        if named is None and len(code) == 1:
            named = code[0]
        if named is None:
            raise ProgramError(
                "Which file is the entry module? Name it index.ts, or say which in "
                'package.json ("main": "src/main.ts").'
            )
        why = "the entry module"
    if named not in files:
        raise ProgramError(f"{named} ({why}) is not among the uploaded files.")
    if not named.endswith(CODE_SUFFIXES):
        raise ProgramError(f"{named} ({why}) is not a .ts or .js module.")
    return named


def _declared_entry(config: dict[str, dict]) -> tuple[str, str] | None:
    deno = config.get("deno.json", {})
    exports = deno.get("exports")
    if isinstance(exports, dict):
        exports = exports.get(".")
    if isinstance(exports, str):
        return clean_path(exports), 'deno.json "exports"'
    package = config.get("package.json", {})
    for key in ("module", "main"):
        if isinstance(package.get(key), str):
            return clean_path(package[key]), f'package.json "{key}"'
    return None


def _imports(config: dict[str, dict]) -> dict[str, str]:
    """The import map the upload declares; where each name may point is checked here, since
    a map entry is not mapped again (an entry naming /etc/passwd would bypass the build's
    guard)."""
    imports: dict[str, str] = {}
    package = config.get("package.json", {})
    for key in ("devDependencies", "dependencies"):  # dependencies win
        declared = package.get(key) or {}
        if not isinstance(declared, dict):
            raise ProgramError(f'package.json "{key}" must map package names to versions.')
        for name, version in declared.items():
            if not isinstance(version, str) or not re.match(r"^(@[\w.-]+/)?[\w.-]+$", name):
                raise ProgramError(f'package.json "{key}": {name!r} is not a package name.')
            if version.startswith(("file:", "link:", "git", "http:", "https:", "/", ".")):
                raise ProgramError(
                    f'package.json "{key}": {name} is "{version}"; only versions from the npm '
                    "registry can be installed (an exact version or a range)."
                )
            if version.startswith(("npm:", "jsr:")):  # an alias: "lodash": "npm:lodash-es@4"
                target = version
            else:
                target = f"npm:{name}@{version or 'latest'}"
            imports[name] = target
            imports[f"{name}/"] = target + "/"
    deno_imports = config.get("deno.json", {}).get("imports") or {}
    if not isinstance(deno_imports, dict):
        raise ProgramError('deno.json "imports" must map names to modules.')
    if config.get("deno.json", {}).get("scopes"):
        raise ProgramError('deno.json "scopes" are not supported; use "imports".')
    for name, target in deno_imports.items():
        if not isinstance(target, str):
            raise ProgramError(f'deno.json "imports": {name!r} must map to a string.')
        imports[name] = target
    for name, target in imports.items():
        _check_target(name, target)
    return imports


def _check_target(name: str, target: str) -> None:
    if target.startswith(("npm:", "jsr:", "node:")):
        return
    if target.startswith(("./", "../")):
        if posixpath.normpath(target).startswith(".."):
            raise ProgramError(f'The import map sends "{name}" outside the uploaded files.')
        return
    if target.startswith("https://"):
        return  # which hosts a build may import from is checked when the build fetches
    raise ProgramError(
        f'The import map sends "{name}" to "{target}": a name may point at npm:, jsr:, '
        "node:, https: or a file of the upload (./...)."
    )


def program_from_archive(data: bytes, entry: str | None = None) -> Program:
    """A .tar.gz (or .zip) of the worker's directory (one top directory is taken off if all
    files share it). Links, devices and anything that is not a regular text file are refused.
    The archive is unpacked in a process of its own with CPU, memory and time limits
    (unpack.py), never in this one."""
    limit = settings.MAX_SOURCE_BYTES
    memory = UNPACK_MEMORY_BYTES + 4 * (len(data) + limit)
    command = [sys.executable, "-I", "-S", str(UNPACK), str(limit),
               str(settings.MAX_PROGRAM_FILES), str(UNPACK_CPU_SECONDS), str(memory)]  # fmt: skip
    try:
        done = subprocess.run(
            command, input=data, capture_output=True, timeout=UNPACK_SECONDS, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise ProgramError(
            f"The archive took longer than {UNPACK_SECONDS} s to unpack and was refused."
        ) from exc
    answer = _answer_of(done)
    if "error" in answer:
        kind = ProgramTooLarge if answer.get("tooLarge") else ProgramError
        raise kind(answer["error"])
    return program_from_files(_without_top_directory(answer["files"]), entry)


def _answer_of(done: subprocess.CompletedProcess) -> dict:
    if done.returncode == -signal.SIGXCPU or done.returncode == -signal.SIGKILL:
        raise ProgramError(
            f"The archive needed more than {UNPACK_CPU_SECONDS} s of CPU to unpack and was "
            "refused (an ordinary archive of a worker takes milliseconds)."
        )
    try:
        answer = json.loads(done.stdout)
    except ValueError:
        answer = None
    if done.returncode != 0 or not isinstance(answer, dict):
        # Out of memory inside the parser is the likely cause; the details are not the
        # tenant's business, the refusal is.
        raise ProgramTooLarge(
            "The archive needs more memory to unpack than it may, and was refused."
        )
    return answer


def _without_top_directory(files: dict[str, str]) -> dict[str, str]:
    tops = {p.split("/", 1)[0] for p in files}
    if len(tops) == 1 and all("/" in p for p in files):
        return {p.split("/", 1)[1]: t for p, t in files.items()}
    return files
