"""Rendering the chart with Helm's own engine, and finding things in the result.

Helm runs in-process from the helm-python-sdk wheel (Helm's Go SDK built as a
shared library): no helm binary, no cluster, no network.
"""

from __future__ import annotations

import copy
import functools
import json
from pathlib import Path

import helm_python as helm
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "baton"
SCENARIOS = sorted(
    path.name.removesuffix("-values.yaml") for path in (CHART / "ci").glob("*-values.yaml")
)
RELEASE = "baton"
NAMESPACE = "jobs"
GRPC_PORT = 50051


def scenario_values(name: str) -> dict:
    return yaml.safe_load((CHART / "ci" / f"{name}-values.yaml").read_text()) or {}


def merged(base: dict, override: dict) -> dict:
    """`base` with `override` merged over it, as Helm merges values files."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merged(out[key], value)
        else:
            out[key] = value
    return out


def render_files(values: dict) -> dict[str, str]:
    with helm.Chart.load(CHART) as chart:
        return chart.render(values, name=RELEASE, namespace=NAMESPACE)


def render(values: dict) -> list[dict]:
    """Every manifest the chart renders with `values`, NOTES.txt aside."""
    docs = []
    for path, text in sorted(render_files(values).items()):
        if path.endswith("NOTES.txt"):
            continue
        docs.extend(doc for doc in yaml.safe_load_all(text) if doc)
    return docs


@functools.cache
def _scenario_docs(name: str) -> str:
    return json.dumps(render(scenario_values(name)))


def scenario(name: str) -> list[dict]:
    """The manifests of a scenario (rendered once, copied for each test)."""
    return json.loads(_scenario_docs(name))


def find(docs: list[dict], kind: str, name: str) -> dict:
    matches = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(matches) == 1, f"expected one {kind} {name}, found {len(matches)}"
    return matches[0]


def maybe(docs: list[dict], kind: str, name: str) -> dict | None:
    matches = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    return matches[0] if matches else None


def broker(docs):
    return find(docs, "Deployment", f"{RELEASE}-broker")


def worker(docs):
    return find(docs, "Deployment", f"{RELEASE}-worker")


def migrate_job(docs):
    return find(docs, "Job", f"{RELEASE}-migrate")


def pod_specs(docs: list[dict]):
    for doc in docs:
        if doc["kind"] in ("Deployment", "Job"):
            yield doc["metadata"]["name"], doc["spec"]["template"]["spec"]


def container(workload: dict) -> dict:
    (only,) = workload["spec"]["template"]["spec"]["containers"]
    return only


def env_var(container_spec: dict, name: str) -> dict:
    (var,) = [v for v in container_spec.get("env", []) if v["name"] == name]
    return var


def volume(workload: dict, name: str) -> dict:
    (vol,) = [v for v in workload["spec"]["template"]["spec"]["volumes"] if v["name"] == name]
    return vol


def mount(container_spec: dict, name: str) -> dict:
    (found,) = [m for m in container_spec["volumeMounts"] if m["name"] == name]
    return found


def config_data(docs, component: str) -> dict:
    return find(docs, "ConfigMap", f"{RELEASE}-{component}")["data"]


def checksums(docs, component: str) -> dict:
    annotations = find(docs, "Deployment", f"{RELEASE}-{component}")["spec"]["template"][
        "metadata"
    ]["annotations"]
    return {key: value for key, value in annotations.items() if key.startswith("checksum/")}
