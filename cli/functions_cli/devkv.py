"""Key-value namespaces for `functions dev`: the same operations and answers as the platform's
(runtime_api/bindings.py), kept in this process's memory, one namespace per binding name, and
written to FOLDER/.functions/kv.json on exit so the next session starts where this one ended.
Nothing here reaches the platform's data."""

import base64
import json
import threading
import time
from pathlib import Path
from typing import Any

MAX_KEY_CHARS = 512
MAX_VALUE_BYTES = 1024 * 1024


class LocalKv:
    def __init__(self, bindings: list[str], file: Path):
        self.bindings, self.file = set(bindings), file
        self.lock = threading.Lock()
        # binding -> key -> {value (base64), metadata, version, expiresAt (ms) or None}
        self.data: dict[str, dict[str, dict[str, Any]]] = {name: {} for name in bindings}
        if file.exists():
            try:
                kept = json.loads(file.read_text())
            except ValueError:
                kept = {}
            for name in bindings:
                self.data[name].update(kept.get(name) or {})

    def save(self) -> None:
        self.file.parent.mkdir(parents=True, exist_ok=True)
        with self.lock:
            self.file.write_text(json.dumps(self.data))

    def answer(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        binding = body.get("binding")
        if binding not in self.bindings:
            return 404, error(
                "kv_binding_not_found",
                f"No key-value binding named {str(binding)[:64]!r} here: start `functions dev` "
                "with --kv NAME (or --worker, for that worker's bindings).",
            )
        with self.lock:
            return self.perform(self.data[binding], body)

    def perform(self, entries: dict[str, dict[str, Any]], body: dict[str, Any]) -> tuple[int, dict]:
        now = time.time() * 1000
        for key in [k for k, e in entries.items() if e["expiresAt"] and e["expiresAt"] <= now]:
            del entries[key]
        op, key = body.get("op"), body.get("key")
        if op == "list":
            prefix, after = str(body.get("prefix") or ""), str(body.get("cursor") or "")
            after = base64.urlsafe_b64decode(after.encode()).decode() if after else ""
            limit = max(1, min(int(body.get("limit") or 100), 1000))
            names = sorted(k for k in entries if k.startswith(prefix) and k > after)
            page = names[:limit]
            cursor = (
                base64.urlsafe_b64encode(page[-1].encode()).decode() if len(names) > limit else None
            )
            keys = [{"key": k, "metadata": entries[k]["metadata"], "version": entries[k]["version"],
                     "expiresAt": entries[k]["expiresAt"]} for k in page]  # fmt: skip
            return 200, {"keys": keys, "cursor": cursor}
        if not isinstance(key, str) or not key or len(key) > MAX_KEY_CHARS:
            return 400, error("invalid_request", f"A key is 1 to {MAX_KEY_CHARS} characters.")
        found = entries.get(key)
        if op == "get":
            return 200, {"found": False} if found is None else {"found": True, **found}
        if op == "delete":
            return 200, {"deleted": entries.pop(key, None) is not None}
        if op != "put":
            return 400, error("invalid_request", f"Unknown operation {str(op)[:20]!r}.")
        value = str(body.get("value") or "")
        if len(base64.b64decode(value)) > MAX_VALUE_BYTES:
            return 413, error(
                "payload_too_large", f"A value holds at most {MAX_VALUE_BYTES} bytes."
            )
        version = found["version"] if found else 0
        if body.get("ifVersion") is not None and body["ifVersion"] != version:
            return 200, {"ok": False, "version": version}
        ttl = body.get("ttl")
        entries[key] = {
            "value": value, "metadata": body.get("metadata"), "version": version + 1,
            "expiresAt": now + ttl * 1000 if ttl else None,
        }  # fmt: skip
        return 200, {"ok": True, "version": version + 1, "expiresAt": entries[key]["expiresAt"]}


def error(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}
