"""The generated project's npm lockfile: every package the program's build resolved, at its
version and with its hash, placed where Node.js finds the right copy; the project's own
packages untouched."""

import json

import pytest

from deployments.npm_lock import LockError, lockfile

TEMPLATE = {
    "name": "worker-deployment", "lockfileVersion": 3, "requires": True,
    "packages": {
        "": {"name": "worker-deployment", "dependencies": {"next": "16.4.6"},
             "devDependencies": {"typescript": "5.9.3"}},
        "node_modules/next": {"version": "16.4.6", "dependencies": {"semver": "^7.7.0"}},
        "node_modules/semver": {"version": "7.7.0", "dev": True},
        "node_modules/typescript": {"version": "5.9.3", "dev": True},
    },
}  # fmt: skip
DENO_LOCK = {"version": "5", "npm": {
    "jsonwebtoken@9.0.2": {"integrity": "sha512-a", "dependencies": ["jws", "semver@7.8.6"]},
    "jws@3.2.3": {"integrity": "sha512-b", "dependencies": ["jwa", "safe-buffer"]},
    "jwa@1.4.2": {"integrity": "sha512-c", "dependencies": ["safe-buffer"]},
    "safe-buffer@5.2.1": {"integrity": "sha512-d"},
    "semver@7.8.6": {"integrity": "sha512-e"},
    "semver@6.3.1": {"integrity": "sha512-f"},
    "@scope/left@1.0.0": {"integrity": "sha512-g", "dependencies": ["semver@6.3.1"],
                          "optionalDependencies": ["fsevents"]},
    "fsevents@2.3.3": {"integrity": "sha512-h", "os": ["darwin"]},
    "zod@3.23.8": {"integrity": "sha512-i"},
}}  # fmt: skip
PACKAGES = {"jsonwebtoken": "9.0.2", "@scope/left": "1.0.0", "zod": "3.23.8"}


def test_every_package_is_pinned_with_its_hash_where_node_finds_it():
    lock = lockfile(TEMPLATE, json.dumps(DENO_LOCK), PACKAGES)
    tree = lock["packages"]
    # The program's packages are the root's dependencies too (npm ci checks package.json
    # against them), beside the project's own.
    assert tree[""]["dependencies"] == {"@scope/left": "1.0.0", "jsonwebtoken": "9.0.2",
                                        "next": "16.4.6", "zod": "3.23.8"}  # fmt: skip
    assert tree["node_modules/jsonwebtoken"] == {
        "version": "9.0.2", "integrity": "sha512-a",
        "resolved": "https://registry.npmjs.org/jsonwebtoken/-/jsonwebtoken-9.0.2.tgz",
        "dependencies": {"jws": "3.2.3", "semver": "7.8.6"},
    }  # fmt: skip
    assert tree["node_modules/@scope/left"]["resolved"] == (
        "https://registry.npmjs.org/@scope/left/-/left-1.0.0.tgz"
    )
    # A name used once in the program's tree and not by the project: at the top, once.
    for name in ("jws", "jwa", "safe-buffer", "zod"):
        assert f"node_modules/{name}" in tree
    assert not any(p.endswith("/node_modules/safe-buffer") for p in tree)
    # Two versions of semver in the program, one more in the project (a dev one): each of
    # the program's inside the package that needs it; the project's stays as it was.
    assert tree["node_modules/semver"] == {"version": "7.7.0", "dev": True}
    assert tree["node_modules/jsonwebtoken/node_modules/semver"]["version"] == "7.8.6"
    assert tree["node_modules/@scope/left/node_modules/semver"]["integrity"] == "sha512-f"
    # Reached only as an optional dependency: npm may skip it on a platform it does not fit.
    assert tree["node_modules/fsevents"] == {
        "version": "2.3.3", "integrity": "sha512-h", "os": ["darwin"], "optional": True,
        "resolved": "https://registry.npmjs.org/fsevents/-/fsevents-2.3.3.tgz",
    }  # fmt: skip
    assert tree["node_modules/@scope/left"]["optionalDependencies"] == {"fsevents": "2.3.3"}
    # The same program gives the same file, byte for byte.
    assert json.dumps(lockfile(TEMPLATE, json.dumps(DENO_LOCK), PACKAGES)) == json.dumps(lock)
    # The template is not changed by it.
    assert "node_modules/zod" not in TEMPLATE["packages"]


def test_a_program_without_packages_keeps_the_projects_lockfile():
    assert lockfile(TEMPLATE, "", {}) == TEMPLATE


def test_what_the_lockfile_cannot_name_is_refused_with_the_reason():
    with pytest.raises(LockError, match="semver: the platform's project has its own copy"):
        lockfile(TEMPLATE, json.dumps(DENO_LOCK), {"semver": "7.8.6"})
    with pytest.raises(LockError, match="left-pad@1.3.0: not in the lockfile"):
        lockfile(TEMPLATE, json.dumps(DENO_LOCK), {"left-pad": "1.3.0"})
