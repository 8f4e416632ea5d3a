"""The contract shared with the Deno runtime and the generated Next.js project
(contract.json beside this file): statuses, error codes with their HTTP status, header
names and limit names."""

import json
from pathlib import Path

PATH = Path(__file__).with_name("contract.json")
CONTRACT = json.loads(PATH.read_text())

DEPLOYMENT_STATUSES: list[str] = CONTRACT["deploymentStatuses"]
LOG_LEVELS: list[str] = CONTRACT["logLevels"]
HEADERS: dict[str, str] = CONTRACT["headers"]
ERRORS: dict[str, int] = CONTRACT["errors"]
LIMITS: list[str] = CONTRACT["limits"]
