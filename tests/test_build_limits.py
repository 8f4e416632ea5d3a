"""Builds bounded like the runtime: the startup probe runs the tenant's top level confined
(memory of every kind, processes, CPU, time), reports on a channel the module cannot forge,
and a build that meets a limit fails saying which."""

import resource
import time
from pathlib import Path

import pytest

from deployments.models import Deployment

from .helpers import GREETER, build_now

pytestmark = pytest.mark.slow  # real Deno builds


PROGRAMS = Path(__file__).parent / "programs" / "build_bombs"


def program(name: str) -> str:
    return (PROGRAMS / f"{name}.ts").read_text()


def test_a_top_level_holding_gigabytes_of_buffers_fails_the_build(worker):
    built = build_now(worker, program("memory"))
    assert built.status == Deployment.Status.ERROR
    assert built.error_message.startswith(
        "The module's top level held more memory than the deployment's 128 MB while loading"
    )
    # The next build of the same tenant is served as ever.
    assert build_now(worker, GREETER).status == Deployment.Status.READY


def test_a_top_level_that_floods_its_output_fails_the_build_holding_no_more_than_the_bound(
    worker,
):
    """The build process itself (not confined) reads what the module prints: unbounded, this
    module made it hold 17 GB and take 49 s."""
    started = time.monotonic()
    built = build_now(worker, program("flood"))
    assert built.status == Deployment.Status.ERROR
    assert built.error_message.startswith(
        "The module's top level wrote more than 1 MB to its output while loading and was "
        "stopped: print less outside the exported functions."
    )
    assert time.monotonic() - started < 20
    # This process's peak memory, a high-water mark: the flood's gigabytes would have raised it.
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss < 2 * 1024 * 1024  # KB
    assert build_now(worker, GREETER).status == Deployment.Status.READY


def test_a_forged_startup_report_does_not_pass_the_build(worker):
    built = build_now(worker, program("forged"))
    assert built.status == Deployment.Status.ERROR
    assert built.error_message == (
        "The module failed to load: it stopped the process that loaded it (exit code 0) "
        "before it finished loading."
    )


def test_a_top_level_that_never_finishes_fails_the_build(worker):
    built = build_now(worker, program("never"))
    assert built.status == Deployment.Status.ERROR
    assert built.error_message.startswith(
        "The module's top level did not finish loading within 5 s: it waits for something"
    )
