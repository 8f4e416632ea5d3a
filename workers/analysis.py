"""Static analysis of a worker's source: which functions it exports, without running it."""

import json
import re
from pathlib import Path

# Deno prints the temporary file's full URL; tenants only know their module as worker.ts.
FILE_URL = re.compile(r"file://\S*?/worker\.ts")
SOURCE_NAME = "worker.ts"


class AnalysisError(Exception):
    pass


def clean_deno_output(text: str) -> str:
    """Deno's diagnostics with our temporary paths and Rust noise taken out."""
    text = FILE_URL.sub(SOURCE_NAME, text)
    # A syntax error is printed twice (as a warning, then as the error): keep the error.
    if text.startswith("Warning") and "\nerror: " in text:
        text = text[text.index("\nerror: ") + 1 :]
    lines = [
        line.rstrip()
        for line in text.splitlines()
        if not line.startswith(("Stack backtrace", "   0: <unknown>", "Check "))
    ]
    return "\n".join(lines).strip()


def exported_functions(doc_json: str) -> list[str]:
    """Names of the module's named exports that are functions, in source order."""
    doc = json.loads(doc_json)
    nodes = doc.get("nodes", doc) if isinstance(doc, dict) else doc
    symbols = []
    if isinstance(nodes, dict):  # deno doc --json >= 2.x: {url: {symbols: [...]}}
        for module in nodes.values():
            symbols.extend(module.get("symbols", []))
    else:  # older shape: a flat list of nodes
        symbols = [{"name": n.get("name"), "declarations": [n]} for n in nodes]
    names = []
    for symbol in symbols:
        name = symbol.get("name")
        if not name or name == "default" or symbol.get("isDefault"):
            continue
        for decl in symbol.get("declarations", []):
            if decl.get("declarationKind") == "export" and decl.get("kind") == "function":
                names.append(name)
                break
    return list(dict.fromkeys(names))


def write_source(workdir: Path, source: str) -> Path:
    path = workdir / SOURCE_NAME
    path.write_text(source)
    return path
