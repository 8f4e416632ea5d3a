"""The type checker kept warm between builds (deployments/checker.py) tells tenants what a
fresh `deno check` tells them, is stopped with the build's limits, and gives way to
`deno check` whenever it could judge differently."""

import os
import signal
import threading

import pytest

from deployments import checker
from deployments.build import analyse_program
from deployments.errors import BuildFailed
from deployments.program import program_from_files

pytestmark = pytest.mark.slow  # real Deno

CASES = {
    "strict null checks": {
        "main.ts": "export async function h(x?: string) {\n  return x.length;\n}\n"
    },
    "untyped parameters allowed": {"main.ts": "export async function h(a) {\n  return a;\n}\n"},
    "the platform's types": {
        "main.ts": 'import type { Context } from "@functions/context";\n'
        "export async function h(p: unknown, ctx: Context) {\n"
        "  const n: number = ctx.requestId;\n  return n;\n}\n"
    },
    "errors in two files, one explained by another place": {
        "main.ts": 'import { f } from "./lib/f.ts";\ntype A = { a: { b: number } };\n'
        'export async function h() {\n  const v: A = { a: { b: "x" } };\n  return f() + v;\n}\n',
        "lib/f.ts": 'export function f(): number {\n  return "no";\n}\nconst q: string = 1;\n',
    },
    "node's types": {
        "main.ts": 'import { readFileSync } from "node:fs";\n'
        'export async function h() {\n  const s: number = readFileSync("x", "utf8");\n'
        "  return s;\n}\n"
    },
    "a package's types, through the upload's import map": {
        "main.ts": 'import { z } from "zod";\n'
        "export async function h() {\n  const n: string = z.number().parse(1);\n  return n;\n}\n",
        "deno.json": '{ "imports": { "zod": "npm:zod@3.23.8" } }',
    },
    "no errors": {
        "main.ts": "export async function h(p: { n?: number }) {\n  return p.n ?? 0;\n}\n"
    },
}


def judged(files: dict[str, str]) -> tuple[str, list | None]:
    try:
        analyse_program(program_from_files(files, "main.ts"))
    except BuildFailed as exc:
        return str(exc), exc.diagnostics
    return "passed", None


@pytest.fixture
def answered(monkeypatch):
    """How many of the test's checks the warm checker answered itself, and how many it handed
    to `deno check` (not counting the warm-ups it starts in the background)."""
    counts = {"warm": 0, "handed over": 0}
    real = checker.check

    def counting(*args, **kwargs):
        found = real(*args, **kwargs)
        if threading.current_thread().name != "warm-type-checker":
            counts["warm" if found is not None else "handed over"] += 1
        return found

    monkeypatch.setattr(checker, "check", counting)
    yield counts
    checker.stop()


@pytest.mark.parametrize("case", CASES)
def test_the_warm_checker_tells_what_deno_check_tells(case, settings, answered):
    settings.BUILD_WARM_CHECKER = False
    fresh = judged(CASES[case])
    settings.BUILD_WARM_CHECKER = True
    warm = judged(CASES[case])
    assert answered == {"warm": 1, "handed over": 0}
    assert warm == fresh
    if case != "no errors" and case != "untyped parameters allowed":
        assert "type error" in fresh[0] and fresh[1]


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
    message, diagnostics = judged(CASES["strict null checks"])
    assert "line 2, column 10: TS18048 'x' is possibly 'undefined'" in message
    assert diagnostics == [{"file": "main.ts", "line": 2, "column": 10,
                            "message": "TS18048 'x' is possibly 'undefined'."}]  # fmt: skip
    assert judged(CASES["no errors"]) == ("passed", None)
    assert answered == {"warm": 2, "handed over": 0}


def test_a_checker_killed_between_builds_costs_no_build_its_answer(answered):
    assert judged(CASES["no errors"]) == ("passed", None)
    server = checker._current().server
    assert server is not None
    os.killpg(server.proc.pid, signal.SIGKILL)
    server.proc.wait()
    # The build that finds it dead asks `deno check`; the one after starts a new server.
    assert "TS18048" in judged(CASES["strict null checks"])[0]
    assert "TS18048" in judged(CASES["strict null checks"])[0]
    assert answered == {"warm": 2, "handed over": 1}


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
