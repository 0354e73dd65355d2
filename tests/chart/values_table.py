"""The values table of charts/baton/README.md, built from values.yaml.

values.yaml documents each value with a `# --` comment right above its key,
continued on the `#` lines that follow, as helm-docs reads them; a
`# @default -- text` line replaces the default shown. A documented key that
holds a mapping is one row: its children are its default, not rows.

    python3 tests/chart/values_table.py           # print the table
    python3 tests/chart/values_table.py --write   # rewrite it in README.md

test_chart.py checks that README.md holds exactly this table and that every
value is documented.
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

CHART = Path(__file__).resolve().parents[2] / "charts" / "baton"
START = "<!-- values:start -->"
END = "<!-- values:end -->"

KEY = re.compile(r"^(?P<indent> *)(?P<key>[A-Za-z0-9_.-]+):(\s|$)")


@dataclass
class Doc:
    """One documented value."""

    path: str
    description: str
    default: str | None = None


def read_docs(text: str) -> list[Doc]:
    """The documented keys of a values file, in file order."""
    docs: list[Doc] = []
    stack: list[tuple[int, str]] = []
    pending: Doc | None = None

    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("# --"):
            pending = Doc("", stripped[4:].strip())
        elif stripped.startswith("# @default --") and pending:
            pending.default = stripped[len("# @default --") :].strip()
        elif stripped.startswith("#") and pending:
            pending.description += " " + stripped.lstrip("#").strip()
        elif not stripped:
            pending = None
        elif match := KEY.match(line):
            indent = len(match["indent"])
            while stack and stack[-1][0] >= indent:
                stack.pop()
            stack.append((indent, match["key"]))
            if pending:
                pending.path = ".".join(key for _, key in stack)
                docs.append(pending)
            pending = None
    return docs


def lookup(values: dict, path: str):
    node = values
    for key in path.split("."):
        node = node[key]
    return node


def type_name(value) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "list"
    return "object"


def leaves(node, prefix: str = ""):
    """Paths of every scalar and every empty list or mapping."""
    if isinstance(node, dict) and node:
        for key, child in node.items():
            yield from leaves(child, f"{prefix}.{key}" if prefix else key)
    else:
        yield prefix


def undocumented(text: str) -> list[str]:
    """Values with no `# --` comment on themselves or on a mapping above them."""
    documented = {doc.path for doc in read_docs(text)}
    missing = []
    for path in leaves(yaml.safe_load(text)):
        parts = path.split(".")
        prefixes = {".".join(parts[:n]) for n in range(1, len(parts) + 1)}
        if not prefixes & documented:
            missing.append(path)
    return missing


def table(text: str) -> str:
    """The Markdown table of every documented value."""
    values = yaml.safe_load(text)
    rows = ["| Key | Type | Default | Description |", "| --- | --- | --- | --- |"]
    for doc in read_docs(text):
        value = lookup(values, doc.path)
        default = doc.default or f"`{json.dumps(value, separators=(',', ':'))}`"
        description = doc.description.replace("|", "\\|")
        rows.append(f"| `{doc.path}` | {type_name(value)} | {default} | {description} |")
    return "\n".join(rows)


def readme_table(readme: str) -> str:
    """The table between the markers of a README."""
    start = readme.index(START) + len(START)
    return readme[start : readme.index(END)].strip()


def main() -> int:
    text = (CHART / "values.yaml").read_text()
    missing = undocumented(text)
    if missing:
        print("undocumented values: " + ", ".join(missing), file=sys.stderr)
        return 1
    generated = table(text)
    if "--write" not in sys.argv[1:]:
        print(generated)
        return 0

    readme_path = CHART / "README.md"
    readme = readme_path.read_text()
    before, rest = readme.split(START, 1)
    after = rest.split(END, 1)[1]
    readme_path.write_text(f"{before}{START}\n{generated}\n{END}{after}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
