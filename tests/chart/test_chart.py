"""The Helm chart as a whole, in every scenario.

Each values file in charts/baton/ci/ is a scenario: it must lint clean, render,
and every manifest must validate strictly (no unknown field) against the
Kubernetes 1.30 and 1.37 schemas, with hardened pods, standard labels and no
empty keys. The schema must refuse bad values, and the README must document
every value.
"""

from __future__ import annotations

import json
from pathlib import Path

import helm_python as helm
import jsonschema
import kubernetes_validate
import pytest
import yaml

import values_table
from rendering import (
    CHART,
    GRPC_PORT,
    NAMESPACE,
    RELEASE,
    SCENARIOS,
    merged,
    pod_specs,
    render_files,
    scenario,
    scenario_values,
)

KUBE_VERSIONS = ["1.30", "1.37"]

# kubernetes-validate knows the built-in kinds only; the ServiceMonitor is
# checked against the fields of the prometheus-operator CRD that the chart
# may set, refusing any other.
SERVICE_MONITOR_SCHEMA = json.loads(
    (Path(__file__).parent / "servicemonitor.schema.json").read_text()
)


# --- every scenario: lint, render, validate -----------------------------------


@pytest.mark.parametrize("kube", KUBE_VERSIONS)
@pytest.mark.parametrize("name", SCENARIOS)
def test_scenario_lints_clean(name, kube):
    report = helm.lint(
        CHART, scenario_values(name), strict=True, namespace=NAMESPACE, kube_version=f"v{kube}.0"
    )

    assert report["errors"] == []
    problems = [m for m in report["messages"] if m["severity"] >= 2]
    assert problems == []


@pytest.mark.parametrize("kube", KUBE_VERSIONS)
@pytest.mark.parametrize("name", SCENARIOS)
def test_every_manifest_validates_strictly(name, kube):
    docs = scenario(name)
    assert docs

    for doc in docs:
        if doc["kind"] == "ServiceMonitor":
            jsonschema.validate(doc, SERVICE_MONITOR_SCHEMA)
        else:
            kubernetes_validate.validate(doc, kube, strict=True)


def empty_keys(node, path=""):
    """Paths whose value is null, or an empty mapping or list."""
    if isinstance(node, dict):
        if not node:
            yield path
        for key, child in node.items():
            yield from empty_keys(child, f"{path}.{key}")
    elif isinstance(node, list):
        if not node:
            yield path
        for index, child in enumerate(node):
            yield from empty_keys(child, f"{path}[{index}]")
    elif node is None:
        yield path


@pytest.mark.parametrize("name", SCENARIOS)
def test_manifests_have_no_empty_keys_or_trailing_spaces(name):
    for doc in scenario(name):
        assert list(empty_keys(doc)) == [], doc["metadata"]["name"]

    for path, text in render_files(scenario_values(name)).items():
        ragged = [line for line in text.splitlines() if line != line.rstrip()]
        assert ragged == [], path


@pytest.mark.parametrize("name", SCENARIOS)
def test_every_resource_carries_the_standard_labels(name):
    for doc in scenario(name):
        labels = doc["metadata"]["labels"]
        assert labels["helm.sh/chart"] == "baton-0.1.0"
        assert labels["app.kubernetes.io/name"] == "baton"
        assert labels["app.kubernetes.io/instance"] == RELEASE
        assert labels["app.kubernetes.io/version"] == "0.1.0"
        assert labels["app.kubernetes.io/managed-by"] == "Helm"
        assert doc["metadata"]["namespace"] == NAMESPACE


@pytest.mark.parametrize("name", SCENARIOS)
def test_services_select_pods_their_workload_labels(name):
    docs = scenario(name)
    pods = {n: spec for n, spec in pod_specs(docs)}
    templates = {
        d["metadata"]["name"]: d["spec"]["template"]["metadata"]["labels"]
        for d in docs
        if d["kind"] == "Deployment"
    }
    assert pods

    for service in (d for d in docs if d["kind"] == "Service"):
        selector = service["spec"]["selector"].items()
        chosen = [n for n, labels in templates.items() if selector <= labels.items()]
        assert len(chosen) == 1, service["metadata"]["name"]


# --- pod security -------------------------------------------------------------


@pytest.mark.parametrize("name", SCENARIOS)
def test_every_pod_and_container_is_hardened(name):
    for workload, spec in pod_specs(scenario(name)):
        pod = spec["securityContext"]
        assert pod["runAsNonRoot"] is True, workload
        assert pod["runAsUser"] == 10001, workload
        assert pod["seccompProfile"] == {"type": "RuntimeDefault"}, workload
        assert spec["automountServiceAccountToken"] is False, workload

        for c in spec["containers"] + spec.get("initContainers", []):
            ctx = c["securityContext"]
            assert ctx["runAsNonRoot"] is True, (workload, c["name"])
            assert ctx["runAsUser"] == 10001, (workload, c["name"])
            assert ctx["readOnlyRootFilesystem"] is True, (workload, c["name"])
            assert ctx["allowPrivilegeEscalation"] is False, (workload, c["name"])
            assert ctx["capabilities"] == {"drop": ["ALL"]}, (workload, c["name"])
            assert ctx["seccompProfile"] == {"type": "RuntimeDefault"}, (workload, c["name"])


@pytest.mark.parametrize("name", SCENARIOS)
def test_every_container_has_a_writable_tmp(name):
    for workload, spec in pod_specs(scenario(name)):
        (tmp,) = [v for v in spec["volumes"] if v["name"] == "tmp"]
        assert tmp["emptyDir"]["sizeLimit"] == "1Gi", workload
        for c in spec["containers"]:
            assert {"name": "tmp", "mountPath": "/tmp"} in c["volumeMounts"], workload


# --- refusals -----------------------------------------------------------------


BAD_VALUES = {
    "negative broker replicas": {"broker": {"replicas": -1}},
    "replicas as a string": {"worker": {"replicas": "3"}},
    "unknown top-level key": {"brokers": {"replicas": 3}},
    "unknown nested key": {"worker": {"autoscaling": {"targetMemory": 80}}},
    "zero concurrency": {"worker": {"concurrency": 0}},
    "no queue": {"worker": {"queues": []}},
    "queue name with a comma": {"worker": {"queues": ["a,b"]}},
    "duration without unit": {"broker": {"leaseTimeout": "30"}},
    "port out of range": {"broker": {"ports": {"grpc": 70000}}},
    "unknown anti-affinity mode": {"broker": {"podAntiAffinity": "sometimes"}},
    "database URL of another scheme": {"database": {"url": "mysql://db/baton"}},
    "image digest that is not sha256": {"image": {"digest": "latest"}},
}


@pytest.mark.parametrize("override", BAD_VALUES.values(), ids=BAD_VALUES.keys())
def test_schema_refuses_bad_values(override):
    values = merged(scenario_values("default"), override)

    report = helm.lint(CHART, values, namespace=NAMESPACE)
    assert report["errors"], "lint accepted it"
    with pytest.raises(helm.HelmValuesError):
        render_files(values)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({}, "database.url or database.existingSecret"),
        (
            {"database": {"url": "postgres://db/baton"}, "auth": {"enabled": True}},
            "auth.token or auth.existingSecret",
        ),
        ({"database": {"url": "postgres://db/baton"}, "tls": {"enabled": True}}, "tls.secretName"),
        (
            {
                "database": {"url": "postgres://db/baton"},
                "worker": {"autoscaling": {"enabled": True, "minReplicas": 5, "maxReplicas": 2}},
            },
            "minReplicas must not exceed maxReplicas",
        ),
    ],
    ids=["no database", "auth without token", "tls without secret", "hpa min above max"],
)
def test_missing_required_settings_fail_with_a_clear_message(values, message):
    with pytest.raises(helm.HelmRenderError, match=message):
        render_files(values)


def test_values_file_validates_against_its_own_schema():
    with helm.Chart.load(CHART) as chart:
        chart.validate_schema(scenario_values("default"))
        schema = chart.schema

    assert schema["additionalProperties"] is False
    assert set(schema["properties"]) - {"global"} == set(
        yaml.safe_load((CHART / "values.yaml").read_text())
    )


def test_schema_is_strict_at_every_level():
    schema = json.loads((CHART / "values.schema.json").read_text())

    def objects(node, path="$"):
        if isinstance(node, dict):
            if "properties" in node:
                yield path, node
            for key, child in node.items():
                yield from objects(child, f"{path}.{key}")
        elif isinstance(node, list):
            for index, child in enumerate(node):
                yield from objects(child, f"{path}[{index}]")

    loose = [
        path for path, node in objects(schema) if node.get("additionalProperties") is not False
    ]
    # Extra volumes are Kubernetes Volume objects of any type: only `name` is required.
    assert loose == ["$.$defs.volumes.items"]


# --- documentation ------------------------------------------------------------


def test_every_value_is_documented():
    assert values_table.undocumented((CHART / "values.yaml").read_text()) == []


def test_readme_table_matches_values():
    readme = (CHART / "README.md").read_text()
    generated = values_table.table((CHART / "values.yaml").read_text())

    assert values_table.readme_table(readme) == generated, (
        "run: python3 tests/chart/values_table.py --write"
    )


def test_every_scenario_is_described_in_the_readme():
    readme = (CHART / "README.md").read_text()

    for name in SCENARIOS:
        assert f"`{name}-values.yaml`" in readme


@pytest.mark.parametrize("name", SCENARIOS)
def test_notes_show_how_to_reach_the_broker(name):
    notes = render_files(scenario_values(name))[f"{RELEASE}/templates/NOTES.txt"]

    assert f"port-forward svc/{RELEASE}-broker {GRPC_PORT}:{GRPC_PORT}" in notes
    assert f"localhost:{GRPC_PORT} list" in notes
    assert "grpc.health.v1.Health/Check" in notes
    assert "baton.v1.Playbooks/Register" in notes
    assert "baton.v1.Executions/Run" in notes
    assert ("-plaintext" in notes) != (name == "tls")
