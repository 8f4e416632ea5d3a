"""The type checker kept warm between builds (deployments/checker.py) tells tenants what a
fresh `deno check` tells them, is stopped with the build's limits, and gives way to
`deno check` whenever it could judge differently."""

import os
import signal

import pytest

from deployments import checker, confine
from deployments.build import analyse_program
from deployments.errors import BuildFailed
from deployments.program import program_from_files

from .conftest import wait_for

pytestmark = pytest.mark.slow  # real Deno

# One program with an error of each kind in a file of its own (one build each way, not one
# per kind: each fresh `deno check` costs a second or two of the suite).
EVERY_KIND = {
    "main.ts": 'export * from "./strict.ts";\nexport * from "./untyped.ts";\n'
    'export * from "./context.ts";\nexport * from "./related.ts";\n'
    'export * from "./node.ts";\nexport * from "./package.ts";\n',
    # strict null checks
    "strict.ts": "export async function strict(x?: string) {\n  return x.length;\n}\n",
    # untyped parameters are allowed: no error here
    "untyped.ts": "export async function untyped(a) {\n  return a;\n}\n",
    # the platform's types
    "context.ts": 'import type { Context } from "@functions/context";\n'
    "export async function context(p: unknown, ctx: Context) {\n"
    "  const n: number = ctx.requestId;\n  return n;\n}\n",
    # an error explained by another place (related information), and a second in the file
    "related.ts": "type A = { a: { b: number } };\n"
    'export async function related() {\n  const v: A = { a: { b: "x" } };\n  return 1 + v;\n}\n',
    # node's types
    "node.ts": 'import { readFileSync } from "node:fs";\n'
    'export async function node() {\n  const s: number = readFileSync("x", "utf8");\n'
    "  return s;\n}\n",
    # a package's types, through the upload's import map
    "package.ts": 'import { z } from "zod";\n'
    "export async function pkg() {\n  const n: string = z.number().parse(1);\n  return n;\n}\n",
    "deno.json": '{ "imports": { "zod": "npm:zod@3.23.8" } }',
}
STRICT_NULL = {"main.ts": "export async function h(x?: string) {\n  return x.length;\n}\n"}
NO_ERRORS = {"main.ts": "export async function h(p: { n?: number }) {\n  return p.n ?? 0;\n}\n"}


def judged(files: dict[str, str]) -> tuple[str, list | None]:
    try:
        analyse_program(program_from_files(files, "main.ts"))
    except BuildFailed as exc:
        return str(exc), exc.diagnostics
    return "passed", None


@pytest.fixture
def answered(monkeypatch):
    """How many of the test's checks the warm checker answered itself, and how many it handed
    to `deno check` (a server's warm-up is not a check: it asks its server directly)."""
    counts = {"warm": 0, "handed over": 0}
    real = checker.check

    def counting(*args, **kwargs):
        found = real(*args, **kwargs)
        counts["warm" if found is not None else "handed over"] += 1
        return found

    monkeypatch.setattr(checker, "check", counting)
    yield counts
    checker.stop()


def test_the_warm_checker_tells_what_deno_check_tells(settings, answered):
    settings.BUILD_WARM_CHECKER = False
    fresh = judged(EVERY_KIND)
    settings.BUILD_WARM_CHECKER = True
    warm = judged(EVERY_KIND)
    assert answered == {"warm": 1, "handed over": 0}
    assert warm == fresh
    message, diagnostics = warm
    assert message.startswith("6 type errors (TypeScript strict mode")
    assert [(d["file"], d["line"], d["message"].split()[0]) for d in diagnostics] == [
        ("context.ts", 3, "TS2322"), ("node.ts", 3, "TS2322"), ("package.ts", 3, "TS2322"),
        ("related.ts", 3, "TS2322"), ("related.ts", 4, "TS2365"), ("strict.ts", 2, "TS18048"),
    ]  # fmt: skip
    assert "The expected type comes from property 'b'" in message  # the related place


def test_a_type_check_that_never_ends_is_stopped_and_the_next_builds_are_checked(
    settings, answered
):
    settings.BUILD_TIMEOUT_SECONDS = 3
    # Each step of the recursion doubles the type: the compiler would work for hours.
    endless = {
        "main.ts": "type Rep<T, N extends unknown[]> = N['length'] extends 40 ? T"
        " : Rep<[T, T], [...N, 0]>;\n"
        "export async function h(a: Rep<string, []>): Promise<Rep<number, []>> {\n"
        "  return a;\n}\n"
    }
    message, _ = judged(endless)
    assert "Type-checking (TypeScript strict mode, except that untyped parameters are allowed) " \
        "did not finish within 3 s." in message  # fmt: skip
    # The server that was stuck is gone; the next build gets a new one and a true answer.
    message, diagnostics = judged(STRICT_NULL)
    assert "line 2, column 10: TS18048 'x' is possibly 'undefined'" in message
    assert diagnostics == [{"file": "main.ts", "line": 2, "column": 10,
                            "message": "TS18048 'x' is possibly 'undefined'."}]  # fmt: skip
    assert judged(NO_ERRORS) == ("passed", None)
    assert answered == {"warm": 2, "handed over": 0}


@pytest.mark.parametrize("held_by", ["cgroup", "watcher"])
def test_a_type_check_that_takes_all_memory_is_stopped_and_the_next_builds_are_checked(
    held_by, settings, answered, monkeypatch
):
    settings.BUILD_STEP_MEMORY_MB = 500
    if held_by == "watcher":  # a machine where no cgroup can be made
        monkeypatch.setattr(confine, "create", lambda name, limits: None)
    # A million string literal types, made and kept: the compiler wants gigabytes.
    hungry = {
        "main.ts": "type D = '0'|'1'|'2'|'3'|'4'|'5'|'6'|'7'|'8'|'9';\n"
        "type N = `${D}${D}${D}${D}`;\n"
        "type M = { [K in N]: { [J in D]: { [L in D]: `${K}${J}${L}` } } };\n"
        "export async function h(v: M[N][D][D]) {\n  return v;\n}\n"
    }
    message, _ = judged(hungry)
    assert "Type-checking (TypeScript strict mode, except that untyped parameters are allowed) " \
        "needed more than the build's 500 MB of memory and was stopped" in message  # fmt: skip
    assert "TS18048" in judged(STRICT_NULL)[0]
    assert answered == {"warm": 1, "handed over": 0}


def test_a_checker_killed_between_builds_costs_no_build_its_answer(answered):
    assert judged(NO_ERRORS) == ("passed", None)
    server = checker._current().server
    assert server is not None
    os.killpg(server.proc.pid, signal.SIGKILL)
    server.proc.wait()
    # The build that finds it dead asks `deno check`; the one after starts a new server.
    assert "TS18048" in judged(STRICT_NULL)[0]
    assert "TS18048" in judged(STRICT_NULL)[0]
    assert answered == {"warm": 2, "handed over": 1}


def test_a_replaced_checker_is_started_again_before_the_next_build(answered, monkeypatch):
    monkeypatch.setattr(checker, "MAX_CHECKS", 1)  # each server is replaced after one check
    assert judged(NO_ERRORS) == ("passed", None)
    # Its successor starts in the background at once, not when the next build asks.
    successor = wait_for(lambda: checker._current().server, 30, "the next server to start")
    assert "TS18048" in judged(STRICT_NULL)[0]
    assert successor.checks == 1  # it answered that build (and was replaced in turn)
    assert answered == {"warm": 2, "handed over": 0}


def test_a_deno_json_among_the_uploaded_folders_does_not_loosen_the_rules(answered):
    # A warm checker would read lib/deno.json as the configuration of lib/; `deno check`
    # with the build's own configuration reads only that one, so the build asks it.
    files = {
        "main.ts": 'import { f } from "./lib/f.ts";\nexport async function h() {\n'
        "  return f();\n}\n",
        "lib/f.ts": "export function f(x?: string) {\n  return x.length;\n}\n",
        "lib/deno.json": '{ "compilerOptions": { "strict": false } }',
    }
    message, _ = judged(files)
    assert "lib/f.ts, line 2, column 10: TS18048 'x' is possibly 'undefined'" in message
    assert answered == {"warm": 0, "handed over": 0}
