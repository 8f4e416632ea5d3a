"""The contract shared with the Deno runtime and the generated Next.js project
(runtime/contract.json, the data plane's, read here as data): statuses, error codes with
their HTTP status, header names and limit names."""

import json
import re
from pathlib import Path

PATH = Path(__file__).resolve().parents[1] / "runtime" / "contract.json"
CONTRACT = json.loads(PATH.read_text())

DEPLOYMENT_STATUSES: list[str] = CONTRACT["deploymentStatuses"]
LOG_LEVELS: list[str] = CONTRACT["logLevels"]
HEADERS: dict[str, str] = CONTRACT["headers"]
ERRORS: dict[str, int] = CONTRACT["errors"]
LIMITS: list[str] = CONTRACT["limits"]
# The runtime's ids: a call's (req_) or an isolate's lines outside calls (iso_).
REQUEST_ID = re.compile(CONTRACT["requestIdPattern"])
