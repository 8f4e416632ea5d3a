"""One contract across languages: runtime/contract.json is what Python, the Deno runtime
and the generated Next.js project agree on. These tests fail when a side drifts from it."""

import json
import re
from pathlib import Path

import pytest

from deployments.config import limits, runtime_config
from deployments.contract import CONTRACT, ERRORS, HEADERS, LIMITS
from deployments.generator import CONFIG_FILE, CONTRACT_FILE, generate
from deployments.models import Deployment
from telemetry.models import Invocation, LogEntry

from .helpers import GREETER, create_deployment

ROOT = Path(__file__).resolve().parent.parent
RUNTIME = ROOT / "runtime"
GENERATED = ROOT / "deployments" / "backends" / "vercel_template"
# The places each side names an error code.
CODE_USES = re.compile(
    r"""(?:failure|failed|kill|statusOf)\(\s*"([a-z_]+)"|code:\s*"([a-z_]+)\"""", re.VERBOSE
)


def codes_in(path: Path) -> set[str]:
    return {a or b for a, b in CODE_USES.findall(path.read_text())}


def test_python_statuses_levels_and_triggers_are_the_contracts():
    assert Deployment.Status.values == CONTRACT["deploymentStatuses"]
    assert sorted(Deployment.TERMINAL) == sorted(CONTRACT["terminalStatuses"])
    assert sorted(Invocation.Status.values) == sorted(CONTRACT["invocationStatuses"])
    assert sorted(Invocation.Trigger.values) == sorted(CONTRACT["triggers"])
    assert sorted(LogEntry.Level.values) == sorted(CONTRACT["logLevels"])


def test_every_error_code_the_runtime_and_the_generated_project_answer_is_in_the_contract():
    sources = [*RUNTIME.glob("*.ts"), *RUNTIME.glob("*.js"), GENERATED / "lib" / "invoke.ts"]
    used = {path.name: codes_in(path) for path in sources}
    assert used["host.ts"] and used["pool.ts"] and used["invoke.ts"]  # the scan finds them
    for name, codes in used.items():
        assert codes <= set(ERRORS), (
            f"{name} answers codes the contract lacks: {codes - set(ERRORS)}"
        )
    # Statuses are never written beside a code: they come from the contract.
    for path in (RUNTIME / "host.ts", RUNTIME / "pool.ts", GENERATED / "lib" / "invoke.ts"):
        text = path.read_text()
        assert not re.search(r"failure\(\s*\d", text), path.name
        assert not re.search(r"kill\(\s*\d", text), path.name
        assert not re.search(r'"x-(request-id|portal-token|invocation-trigger)"', text), path.name
        # ...and the codes, statuses and header names come from the contract file itself.
        assert re.search(r'^import .* from "\./contract\.(ts|json)"', text, re.M), path.name


def test_the_runtimes_ring_carries_the_contracts_levels():
    levels = re.search(r"LEVELS = \[([^\]]*)\]", (RUNTIME / "ring.ts").read_text()).group(1)
    assert sorted(json.loads(f"[{levels}]")) == sorted(CONTRACT["logLevels"])


def test_both_back_ends_run_with_one_configuration_under_the_contracts_names(worker):
    deployment = create_deployment(worker, GREETER)
    local = runtime_config(deployment)
    assert list(limits(deployment)) == LIMITS and set(LIMITS) <= set(local)
    files = generate(deployment, ["hello"])
    generated = json.loads(files[CONFIG_FILE])
    assert {name: generated[name] for name in LIMITS} == {name: local[name] for name in LIMITS}
    assert generated["id"] == local["id"] == str(deployment.code)
    # The generated project reads the same contract file, byte for byte.
    assert json.loads(files[CONTRACT_FILE]) == CONTRACT
    assert "HEADERS.invokeSecret" in (GENERATED / "lib" / "invoke.ts").read_text()
    assert HEADERS["invokeSecret"] == "x-invoke-secret"  # what callers are told to send


TYPES = {
    "string": str,
    "number": (int, float),
    "boolean": bool,
    "string[]": list,
    "Record<string, string>": dict,
}


@pytest.mark.django_db
def test_the_configuration_the_runtime_gets_is_the_contracts(worker):
    """deployments/config.py builds what runtime/pool.ts's DeploymentConfig types (held to
    the contract by `deno check`): the same fields, of the contract's types."""
    from deployments.config import runtime_config
    from workers.secrets import seal

    from .helpers import ready_in_production

    deployment = ready_in_production(worker)
    deployment.secrets_sealed = seal({"TOKEN": "x"})
    config = runtime_config(deployment)
    config["artifact"] = "sha"  # none without a build
    assert set(config) == set(CONTRACT["config"])
    for name, kind in CONTRACT["config"].items():
        assert isinstance(config[name], TYPES[kind]), (name, config[name])
    assert set(CONTRACT["limits"]) <= set(CONTRACT["config"])
