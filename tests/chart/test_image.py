"""The Dockerfile: the build and runtime stages, and its contract with the chart.

No container engine runs here, so the file is read with BuildKit's own parser
and linted with hadolint.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import dockerfile
import yaml

from rendering import CHART, ROOT


def dockerfile_stages() -> list[list[dockerfile.Command]]:
    stages: list[list[dockerfile.Command]] = []
    for command in dockerfile.parse_file(str(ROOT / "Dockerfile")):
        if command.cmd == "FROM":
            stages.append([])
        stages[-1].append(command)
    return stages


def test_dockerfile_builds_in_one_stage_and_runs_in_a_slim_one():
    builder, runtime = dockerfile_stages()

    assert builder[0].value == ("rust:1.95-slim-bookworm", "AS", "builder")
    builds = [c.value[0] for c in builder if c.cmd == "RUN" and "cargo build" in c.value[0]]
    assert len(builds) == 2, "a cached dependency build, then the real one"
    assert all("--release --locked -p baton" in b for b in builds)
    assert runtime[0].value == ("debian:bookworm-slim",)
    assert [c.flags for c in runtime if c.cmd == "COPY"] == [("--from=builder",)]


def test_image_runs_baton_as_the_user_the_chart_expects():
    runtime = dockerfile_stages()[-1]
    (user,) = [c.value[0] for c in runtime if c.cmd == "USER"]
    (entrypoint,) = [c for c in runtime if c.cmd == "ENTRYPOINT"]
    (expose,) = [c.value for c in runtime if c.cmd == "EXPOSE"]
    chart_user = yaml.safe_load((CHART / "values.yaml").read_text())["securityContext"]["runAsUser"]

    assert user.split(":")[0] == str(chart_user) != "0"
    assert entrypoint.json and entrypoint.value == ("baton",)
    assert set(expose) == {"50051", "9090"}


def test_image_has_python_for_tasks_and_nothing_more():
    runtime = dockerfile_stages()[-1]
    installs = [c.value[0] for c in runtime if c.cmd == "RUN" and "apt-get install" in c.value[0]]

    (install,) = installs
    packages = install.split("--no-install-recommends")[1].split("&&")[0].split()
    assert packages == ["python3", "ca-certificates"]


def test_dockerfile_passes_hadolint():
    hadolint = Path(sys.executable).parent / "hadolint"

    result = subprocess.run(
        [hadolint, str(ROOT / "Dockerfile")], capture_output=True, text=True, check=False
    )

    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerignore_keeps_build_outputs_and_secrets_out():
    ignored = (ROOT / ".dockerignore").read_text().split()

    for pattern in ("**/target", ".git", ".venv"):
        assert pattern in ignored
    for needed in ("migrations", "proto", "Cargo.lock"):
        assert needed not in ignored
