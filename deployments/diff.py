"""What differs between two deployments of a worker: files (a unified diff of each), pinned
packages, plain settings (with their values), the names of the secrets they were deployed
with (never values)."""

import difflib
from dataclasses import dataclass, field

from kv.models import Namespace
from workers.secrets import unseal

CONTEXT = 3


@dataclass
class FileChange:
    path: str
    change: str  # "added", "removed", "changed"
    lines: list[tuple[str, str]] = field(default_factory=list)  # (kind, text): + - @ or " "


@dataclass
class Diff:
    files: list[FileChange]
    same_files: int
    packages: list[dict]  # {"name", "old", "new"}
    secrets: dict[str, list[str]]  # "added", "removed", "changed" -> names
    settings: list[dict] = field(default_factory=list)  # {"name", "old", "new"}: plain values
    bindings: list[dict] = field(default_factory=list)  # {"name", "old", "new"}: namespace ids


def unified(old: str, new: str, path: str) -> list[tuple[str, str]]:
    lines = difflib.unified_diff(
        old.splitlines(), new.splitlines(), f"a/{path}", f"b/{path}", n=CONTEXT, lineterm=""
    )
    kinds = {"+": "add", "-": "del", "@": "hunk"}
    return [(kinds.get(line[:1], "same"), line) for line in list(lines)[2:]]


def secret_names(deployment) -> dict[str, str]:
    return unseal(deployment.secrets_sealed) if deployment.secrets_sealed else {}


def compare(old, new) -> Diff:
    files, same = [], 0
    for path in sorted(set(old.files) | set(new.files)):
        before, after = old.files.get(path), new.files.get(path)
        if before == after:
            same += 1
        elif before is None:
            files.append(FileChange(path, "added", unified("", after, path)))
        elif after is None:
            files.append(FileChange(path, "removed", unified(before, "", path)))
        else:
            files.append(FileChange(path, "changed", unified(before, after, path)))
    pinned_old = {(p["registry"], p["name"]): p["version"] for p in old.packages}
    pinned_new = {(p["registry"], p["name"]): p["version"] for p in new.packages}
    packages = [
        {"name": name, "old": pinned_old.get((reg, name)), "new": pinned_new.get((reg, name))}
        for reg, name in sorted(set(pinned_old) | set(pinned_new))
        if pinned_old.get((reg, name)) != pinned_new.get((reg, name))
    ]
    then, now = secret_names(old), secret_names(new)
    secrets = {
        "added": sorted(now.keys() - then.keys()),
        "removed": sorted(then.keys() - now.keys()),
        "changed": sorted(k for k in now.keys() & then.keys() if now[k] != then[k]),
    }
    return Diff(files=files, same_files=same, packages=packages, secrets=secrets,
                settings=changes(old.plain_settings, new.plain_settings),
                bindings=binding_changes(old, new))  # fmt: skip


def binding_changes(old, new) -> list[dict]:
    """Key-value bindings that differ, with their namespaces' names (or "removed")."""
    found = changes(old.kv_bindings, new.kv_bindings)
    codes = {c for b in found for c in (b["old"], b["new"]) if c}
    names = {
        str(c): n for c, n in Namespace.objects.filter(code__in=codes).values_list("code", "name")
    }
    return [{**b, "old": b["old"] and names.get(b["old"], "removed"),
             "new": b["new"] and names.get(b["new"], "removed")} for b in found]  # fmt: skip


def changes(before: dict | None, after: dict | None) -> list[dict]:
    before, after = before or {}, after or {}
    return [
        {"name": name, "old": before.get(name), "new": after.get(name)}
        for name in sorted(before.keys() | after.keys())
        if before.get(name) != after.get(name)
    ]
