"""The generated project's npm lockfile (package-lock.json, version 3): the project's own
packages as the template's lockfile pins them (Next.js and what it needs), and the program's
packages as the platform's build resolved them (Deno's lockfile): every version below the
program's packages, with its integrity hash. `npm ci` installs exactly this tree, or fails
when a downloaded package does not match its hash, so two builds of one program install
the same packages.

Where each of the program's packages goes (npm's layout, `node_modules/` paths): a name the
program's tree uses once and the project does not use at all goes at the top; every other
package goes inside each package that needs it, nearest first (Node.js looks up from the
importing package, so the nearest copy is the one it loads). The program never shares a
copy with the project's own packages: those may be marked dev or optional for npm.
"""

import copy
import json

REGISTRY = "https://registry.npmjs.org/"


class LockError(ValueError):
    """A resolved package npm's lockfile cannot name (the message says which)."""


def tarball(name: str, version: str) -> str:
    return f"{REGISTRY}{name}/-/{name.rpartition('/')[2]}-{version}.tgz"


def split(key: str) -> tuple[str, str]:
    """'ms@2.1.3' -> ('ms', '2.1.3'); '@types/node@22.0.0' -> ('@types/node', '22.0.0'); Deno's
    peer suffix (`_react@19.0.0`) is not part of the version."""
    name, _, version = key.rpartition("@")
    return name, version.split("_")[0]


def resolved_packages(deno_lock: dict) -> tuple[dict[str, dict], dict[str, list[str]]]:
    """Deno's npm entries by 'name@version' (peer variants folded into one), and the versions
    of each name."""
    entries: dict[str, dict] = {}
    for key, entry in (deno_lock.get("npm") or {}).items():
        name, version = split(key)
        merged = entries.setdefault(f"{name}@{version}", {"dependencies": [], "optional": []})
        merged["integrity"] = entry.get("integrity", "")
        for field in ("os", "cpu"):
            if field in entry:
                merged[field] = entry[field]
        merged["dependencies"] += entry.get("dependencies", [])
        merged["optional"] += entry.get("optionalDependencies", [])
    versions: dict[str, list[str]] = {}
    for key in entries:
        name, version = split(key)
        versions.setdefault(name, []).append(version)
    return entries, versions


def lockfile(template: dict, deno_lock_text: str, packages: dict[str, str]) -> dict:
    """The template's lockfile with the program's packages (name -> exact version) and all
    below them added; LockError when Deno's lockfile lacks what it names."""
    lock = copy.deepcopy(template)
    tree = lock["packages"]
    root = tree[""]
    root["dependencies"] = dict(sorted({**root.get("dependencies", {}), **packages}.items()))
    if not packages:
        return lock
    deno_lock = json.loads(deno_lock_text) if deno_lock_text else {}
    entries, versions = resolved_packages(deno_lock)

    def key_of(dependency: str) -> str:
        """A Deno lockfile dependency (`ms`, or `ms@2.1.3` when names repeat) -> its key."""
        name, at, version = dependency.rpartition("@")
        if not at or not name:  # no version named (a leading @ is a scope)
            name, version = dependency, ""
        version = version.split("_")[0]
        if not version and len(versions.get(name, [])) == 1:
            version = versions[name][0]
        key = f"{name}@{version}"
        if key not in entries:
            raise LockError(f"{dependency}: not in the lockfile the build resolved.")
        return key

    # What each package needs, and whether only optional edges reach it (npm may skip those
    # on a platform they do not fit, e.g. native builds for another OS).
    needs = {
        key: [(key_of(d), False) for d in entry["dependencies"]]
        + [(key_of(d), True) for d in entry["optional"]]
        for key, entry in entries.items()
    }
    tops = [f"{name}@{version}" for name, version in sorted(packages.items())]
    project_names = {path.rpartition("node_modules/")[2] for path in tree if path}
    for top in tops:
        if top not in entries:
            raise LockError(f"{top}: not in the lockfile the build resolved.")
        if split(top)[0] in project_names:
            raise LockError(
                f"{split(top)[0]}: the platform's project has its own copy of this package; "
                "import it through another package, or run the worker on the platform's own "
                "runtime."
            )
    required = reach(tops, needs, with_optional=False)
    wanted = reach(tops, needs, with_optional=True)
    used_names: dict[str, set[str]] = {}
    for key in wanted:
        used_names.setdefault(split(key)[0], set()).add(key)

    placed: dict[str, str] = {}  # node_modules path -> key, the program's only
    at_top = [
        key for key in sorted(wanted)
        if len(used_names[split(key)[0]]) == 1 and split(key)[0] not in project_names
    ]  # fmt: skip
    for key in sorted(set(at_top) | set(tops)):
        placed[f"node_modules/{split(key)[0]}"] = key
    todo = sorted(placed)
    while todo:
        path = todo.pop(0)
        for dependency, _ in needs[placed[path]]:
            if found(placed, path, split(dependency)[0]) == dependency:
                continue
            inner = f"{path}/node_modules/{split(dependency)[0]}"
            placed[inner] = dependency
            todo.append(inner)

    for path, key in sorted(placed.items()):
        name, version = split(key)
        entry = entries[key]
        node: dict = {"version": version, "resolved": tarball(name, version)}
        if entry["integrity"]:
            node["integrity"] = entry["integrity"]
        plain = {split(d)[0]: split(d)[1] for d, optional in needs[key] if not optional}
        optional = {split(d)[0]: split(d)[1] for d, optional in needs[key] if optional}
        if plain:
            node["dependencies"] = dict(sorted(plain.items()))
        if optional:
            node["optionalDependencies"] = dict(sorted(optional.items()))
        for field in ("os", "cpu"):
            if field in entry:
                node[field] = entry[field]
        if key not in required:
            node["optional"] = True
        tree[path] = node
    lock["packages"] = {"": root, **dict(sorted((p, v) for p, v in tree.items() if p))}
    return lock


def found(placed: dict[str, str], path: str, name: str) -> str | None:
    """The package Node.js loads for `name` from the package at `path`: the nearest
    node_modules/<name> at or above it that the program placed (None when there is none, or
    only the project's own)."""
    here = path
    while True:
        candidate = f"{here}/node_modules/{name}"
        if candidate in placed:
            return placed[candidate]
        if "/node_modules/" not in here:
            break
        here = here.rpartition("/node_modules/")[0]
    return placed.get(f"node_modules/{name}")


def reach(tops: list[str], needs: dict[str, list[tuple[str, bool]]], with_optional: bool) -> set:
    seen, todo = set(tops), list(tops)
    while todo:
        for dependency, optional in needs[todo.pop()]:
            if (with_optional or not optional) and dependency not in seen:
                seen.add(dependency)
                todo.append(dependency)
    return seen
