"""What users of the chart rely on: replicas and autoscaling, probes, the
migration hook, pods that roll when configuration changes, secrets and TLS.
"""

from __future__ import annotations

import json

import pytest

from rendering import (
    GRPC_PORT,
    NAMESPACE,
    RELEASE,
    SCENARIOS,
    broker,
    checksums,
    config_data,
    container,
    env_var,
    find,
    merged,
    migrate_job,
    mount,
    pod_specs,
    render,
    render_files,
    scenario,
    scenario_values,
    volume,
    worker,
)

# --- replicas and autoscaling -------------------------------------------------


def test_defaults_run_two_brokers_and_two_workers_without_autoscaler():
    docs = scenario("default")

    assert broker(docs)["spec"]["replicas"] == 2
    assert worker(docs)["spec"]["replicas"] == 2
    assert not [d for d in docs if d["kind"] == "HorizontalPodAutoscaler"]


def test_three_brokers_and_autoscaled_workers():
    docs = scenario("three-brokers-hpa")
    hpa = find(docs, "HorizontalPodAutoscaler", f"{RELEASE}-worker")

    assert broker(docs)["spec"]["replicas"] == 3
    assert "replicas" not in worker(docs)["spec"], "the HPA owns the worker count"
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": f"{RELEASE}-worker",
    }
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (3, 20)
    (metric,) = hpa["spec"]["metrics"]
    assert metric["resource"]["name"] == "cpu"
    assert metric["resource"]["target"] == {"type": "Utilization", "averageUtilization": 60}


def test_autoscaler_needs_a_cpu_request_on_workers():
    for name in SCENARIOS:
        resources = container(worker(scenario(name))).get("resources", {})
        assert "cpu" in resources.get("requests", {}), name


def test_brokers_spread_over_nodes_and_zones_when_asked():
    spec = broker(scenario("three-brokers-hpa"))["spec"]["template"]["spec"]
    selector = {
        "matchLabels": broker(scenario("three-brokers-hpa"))["spec"]["selector"]["matchLabels"]
    }

    (term,) = spec["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert term == {"topologyKey": "kubernetes.io/hostname", "labelSelector": selector}
    (spread,) = spec["topologySpreadConstraints"]
    assert spread["topologyKey"] == "topology.kubernetes.io/zone"
    assert spread["labelSelector"] == selector


def test_brokers_prefer_distinct_nodes_by_default():
    spec = broker(scenario("default"))["spec"]["template"]["spec"]

    (term,) = spec["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
    assert term["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname"
    assert "topologySpreadConstraints" not in spec


@pytest.mark.parametrize("name", SCENARIOS)
def test_both_components_have_disruption_budgets(name):
    docs = scenario(name)

    for component in ("broker", "worker"):
        pdb = find(docs, "PodDisruptionBudget", f"{RELEASE}-{component}")
        deployment = find(docs, "Deployment", f"{RELEASE}-{component}")
        assert pdb["spec"]["selector"] == deployment["spec"]["selector"]
        assert pdb["spec"]["maxUnavailable"] == 1


# --- probes, ports and services -----------------------------------------------


@pytest.mark.parametrize("name", [n for n in SCENARIOS if n != "tls"])
def test_broker_probes_call_grpc_health_on_the_grpc_port(name):
    broker_container = container(broker(scenario(name)))
    ports = {p["name"]: p["containerPort"] for p in broker_container["ports"]}

    assert ports == {"grpc": GRPC_PORT, "metrics": 9090}
    for probe in ("livenessProbe", "readinessProbe"):
        assert broker_container[probe]["grpc"] == {"port": GRPC_PORT}, probe


def test_broker_probes_check_the_tls_port_by_tcp():
    # The kubelet's gRPC probe has no TLS; a plaintext call to a TLS port fails.
    broker_container = container(broker(scenario("tls")))

    for probe in ("livenessProbe", "readinessProbe"):
        assert broker_container[probe]["tcpSocket"] == {"port": GRPC_PORT}, probe
        assert "grpc" not in broker_container[probe]


def test_probe_can_name_a_health_service():
    values = merged(
        scenario_values("default"), {"broker": {"readinessProbe": {"service": "baton.v1.Broker"}}}
    )

    probe = container(broker(render(values)))["readinessProbe"]

    assert probe["grpc"] == {"port": GRPC_PORT, "service": "baton.v1.Broker"}


def test_services_expose_grpc_and_metrics():
    docs = scenario("default")

    (grpc,) = find(docs, "Service", f"{RELEASE}-broker")["spec"]["ports"]
    assert (grpc["name"], grpc["port"], grpc["targetPort"]) == ("grpc", GRPC_PORT, "grpc")
    for component in ("broker", "worker"):
        (metrics,) = find(docs, "Service", f"{RELEASE}-{component}-metrics")["spec"]["ports"]
        assert (metrics["name"], metrics["port"], metrics["targetPort"]) == (
            "metrics",
            9090,
            "metrics",
        )


def test_service_monitors_scrape_the_metrics_services():
    docs = scenario("three-brokers-hpa")

    for component in ("broker", "worker"):
        monitor = find(docs, "ServiceMonitor", f"{RELEASE}-{component}")
        service = find(docs, "Service", f"{RELEASE}-{component}-metrics")
        assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
        assert (
            monitor["spec"]["selector"]["matchLabels"].items()
            <= service["metadata"]["labels"].items()
        )
        (endpoint,) = monitor["spec"]["endpoints"]
        assert (endpoint["port"], endpoint["path"]) == ("metrics", "/metrics")
    assert not [d for d in scenario("default") if d["kind"] == "ServiceMonitor"]


def test_settings_reach_the_containers_through_config_maps():
    docs = scenario("three-brokers-hpa")

    assert config_data(docs, "broker") == {
        "BATON_LISTEN": f"0.0.0.0:{GRPC_PORT}",
        "BATON_METRICS_LISTEN": "0.0.0.0:9090",
        "BATON_LEASE_TIMEOUT": "30s",
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://otel-collector.observability:4317",
        "OTEL_SERVICE_NAME": "baton-broker",
    }
    assert config_data(docs, "worker") == {
        "BATON_BROKER": f"http://{RELEASE}-broker.{NAMESPACE}.svc:{GRPC_PORT}",
        "BATON_CONCURRENCY": "8",
        "BATON_QUEUES": "default,reports",
        "BATON_GRACE": "30s",
        "BATON_METRICS_LISTEN": "0.0.0.0:9090",
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://otel-collector.observability:4317",
        "OTEL_SERVICE_NAME": "baton-worker",
    }
    for component in ("broker", "worker"):
        refs = container(find(docs, "Deployment", f"{RELEASE}-{component}"))["envFrom"]
        assert {"configMapRef": {"name": f"{RELEASE}-{component}"}} in refs


def test_commands_are_the_baton_subcommands():
    docs = scenario("default")

    assert container(broker(docs))["args"] == ["broker", "serve"]
    assert container(worker(docs))["args"] == ["worker"]
    assert container(migrate_job(docs))["args"] == ["broker", "migrate"]
    assert container(broker(docs))["image"] == "baton:0.1.0"


# --- the migration hook -------------------------------------------------------


@pytest.mark.parametrize("name", SCENARIOS)
def test_migrations_run_as_a_pre_install_and_pre_upgrade_hook(name):
    job = migrate_job(scenario(name))
    annotations = job["metadata"]["annotations"]

    assert annotations["helm.sh/hook"] == "pre-install,pre-upgrade"
    assert annotations["helm.sh/hook-delete-policy"] == "before-hook-creation,hook-succeeded"
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"
    assert env_var(container(job), "BATON_DATABASE_URL")["valueFrom"]["secretKeyRef"]


def test_migration_reads_a_hook_secret_created_before_it():
    # The release's own Secret does not exist yet when pre-install hooks run.
    docs = scenario("default")
    job = migrate_job(docs)
    secret = find(docs, "Secret", f"{RELEASE}-migrate")

    ref = env_var(container(job), "BATON_DATABASE_URL")["valueFrom"]["secretKeyRef"]
    assert ref == {"name": f"{RELEASE}-migrate", "key": "url"}
    assert secret["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"
    hook_weight = int(secret["metadata"]["annotations"]["helm.sh/hook-weight"])
    assert hook_weight < int(job["metadata"]["annotations"]["helm.sh/hook-weight"])
    assert secret["data"] == find(docs, "Secret", f"{RELEASE}-database")["data"]


def test_migration_does_not_wait_for_a_service_account_the_release_creates():
    created = migrate_job(scenario("default"))["spec"]["template"]["spec"]
    existing = migrate_job(scenario("external-secret"))["spec"]["template"]["spec"]

    assert "serviceAccountName" not in created
    assert existing["serviceAccountName"] == "baton"


def test_migration_can_be_turned_off():
    docs = render(merged(scenario_values("default"), {"migrate": {"enabled": False}}))

    assert not [d for d in docs if d["kind"] == "Job" or d["metadata"]["name"].endswith("-migrate")]


# --- configuration changes roll the pods --------------------------------------


def test_checksum_changes_when_a_broker_setting_changes():
    base = scenario_values("default")
    before = render(base)
    after = render(merged(base, {"broker": {"leaseTimeout": "45s"}}))

    assert (
        checksums(after, "broker")["checksum/config"]
        != checksums(before, "broker")["checksum/config"]
    )
    assert checksums(after, "worker") == checksums(before, "worker"), "workers need no restart"


def test_checksum_changes_when_a_worker_setting_changes():
    base = scenario_values("default")
    before = render(base)
    after = render(merged(base, {"worker": {"concurrency": 16}}))

    assert (
        checksums(after, "worker")["checksum/config"]
        != checksums(before, "worker")["checksum/config"]
    )
    assert checksums(after, "broker") == checksums(before, "broker")


def test_checksum_changes_when_a_secret_value_changes():
    base = scenario_values("tls")
    before = render(base)
    url = render(
        merged(base, {"database": {"url": "postgres://baton:rotated@postgres:5432/baton"}})
    )
    token = render(merged(base, {"auth": {"token": "rotated"}}))

    for component in ("broker", "worker"):
        old = checksums(before, component)["checksum/secret"]
        assert checksums(url, component)["checksum/secret"] != old, component
        assert checksums(token, component)["checksum/secret"] != old, component


def test_rendering_is_deterministic():
    values = scenario_values("three-brokers-hpa")

    assert render_files(values) == render_files(values)


# --- secrets ------------------------------------------------------------------


def test_database_url_comes_from_the_named_existing_secret():
    docs = scenario("external-secret")
    expected = {"name": "baton-database", "key": "DATABASE_URL"}

    assert (
        env_var(container(broker(docs)), "BATON_DATABASE_URL")["valueFrom"]["secretKeyRef"]
        == expected
    )
    assert (
        env_var(container(migrate_job(docs)), "BATON_DATABASE_URL")["valueFrom"]["secretKeyRef"]
        == expected
    )
    assert not [d for d in docs if d["kind"] == "Secret"], "the chart creates no Secret"


def test_auth_token_comes_from_the_named_existing_secret():
    docs = scenario("external-secret")

    for workload in (broker(docs), worker(docs)):
        auth = volume(workload, "auth")["secret"]
        assert auth["secretName"] == "baton-auth"
        assert auth["items"] == [{"key": "worker-token", "path": "token"}]
        assert mount(container(workload), "auth") == {
            "name": "auth",
            "mountPath": "/etc/baton/auth",
            "readOnly": True,
        }
        assert "--auth-token-file=/etc/baton/auth/token" in container(workload)["args"]


def test_chart_created_secret_holds_the_database_url():
    docs = scenario("default")
    secret = find(docs, "Secret", f"{RELEASE}-database")

    assert secret["data"] == {"url": "cG9zdGdyZXM6Ly9iYXRvbjpiYXRvbkBwb3N0Z3Jlczo1NDMyL2JhdG9u"}
    ref = env_var(container(broker(docs)), "BATON_DATABASE_URL")["valueFrom"]["secretKeyRef"]
    assert ref == {"name": f"{RELEASE}-database", "key": "url"}


def test_no_secret_value_appears_outside_secrets():
    for name in SCENARIOS:
        for doc in scenario(name):
            if doc["kind"] != "Secret":
                text = json.dumps(doc)
                assert "postgres://" not in text, (name, doc["metadata"]["name"])
                assert "change-me" not in text, (name, doc["metadata"]["name"])


def test_image_by_digest_and_pull_secrets():
    docs = scenario("external-secret")
    digest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

    for _, spec in pod_specs(docs):
        assert spec["containers"][0]["image"] == f"registry.example.com/platform/baton@{digest}"
        assert spec["imagePullSecrets"] == [{"name": "registry-credentials"}]


# --- TLS ----------------------------------------------------------------------


def test_tls_secret_is_mounted_read_only_and_the_flags_set():
    docs = scenario("tls")
    brokers, workers = broker(docs), worker(docs)

    for workload in (brokers, workers):
        assert volume(workload, "tls")["secret"]["secretName"] == "baton-tls"
        assert mount(container(workload), "tls") == {
            "name": "tls",
            "mountPath": "/etc/baton/tls",
            "readOnly": True,
        }
    assert {
        "--tls-cert=/etc/baton/tls/tls.crt",
        "--tls-key=/etc/baton/tls/tls.key",
        "--tls-client-ca=/etc/baton/tls/ca.crt",
    } <= set(container(brokers)["args"])
    assert "--tls-ca=/etc/baton/tls/ca.crt" in container(workers)["args"]
    assert (
        config_data(docs, "worker")["BATON_BROKER"]
        == f"https://{RELEASE}-broker.{NAMESPACE}.svc:{GRPC_PORT}"
    )


def test_workers_get_the_ca_but_never_the_brokers_key():
    docs = scenario("tls")

    assert "items" not in volume(broker(docs), "tls")["secret"]
    assert volume(worker(docs), "tls")["secret"]["items"] == [{"key": "ca.crt", "path": "ca.crt"}]


def test_without_tls_nothing_tls_is_rendered():
    docs = scenario("default")

    for workload in (broker(docs), worker(docs)):
        assert not [
            v for v in workload["spec"]["template"]["spec"]["volumes"] if v["name"] == "tls"
        ]
        assert not [a for a in container(workload)["args"] if a.startswith("--tls")]


def test_tls_without_client_auth_leaves_client_certificates_optional():
    values = merged(scenario_values("tls"), {"tls": {"clientAuth": False}})

    args = container(broker(render(values)))["args"]

    assert "--tls-cert=/etc/baton/tls/tls.crt" in args
    assert not [a for a in args if a.startswith("--tls-client-ca")]


def test_workers_never_see_the_database():
    for name in SCENARIOS:
        worker_container = container(worker(scenario(name)))
        names = [var["name"] for var in worker_container.get("env", [])]
        assert "BATON_DATABASE_URL" not in names, name
        assert not [m for m in worker_container["volumeMounts"] if "database" in m["name"]], name
