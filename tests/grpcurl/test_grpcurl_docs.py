"""Runs the commands of docs/grpcurl.md against a real broker and checks
the answers, so the page cannot drift from what a broker says.

The page's blocks fenced as ```sh grpcurl-test name=NAME``` run in document
order in one scratch directory, with the broker's address put in place of
127.0.0.1:50051. Each has a check below; a block whose answer can lag (a
job still retrying) is run again until its check passes or a deadline ends.
A JSON sample after a block must use only fields the real answer has.
"""

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[2] / "docs" / "grpcurl.md"
DOC_ADDR = "127.0.0.1:50051"
FENCE = re.compile(r"^```([^\n]*)\n(.*?)^```\s*$", re.MULTILINE | re.DOTALL)
COMMAND_DEADLINE = 60
SETTLE_DEADLINE = 30.0


def read_blocks():
    """The page's tested blocks, in order: (name, options, script, sample)."""
    blocks, fences = [], FENCE.findall(DOC.read_text())
    for i, (info, body) in enumerate(fences):
        words = info.split()
        if len(words) < 2 or words[1] != "grpcurl-test":
            continue
        options = dict(word.split("=", 1) for word in words[2:])
        following = fences[i + 1] if i + 1 < len(fences) else ("", "")
        sample = following[1] if following[0].strip() in ("json", "text") else None
        blocks.append((options["name"], options, body, sample))
    return blocks


BLOCKS = read_blocks()


def parse_stream(text):
    """Every JSON object in grpcurl's output (a stream prints several)."""
    decoder, objects, at = json.JSONDecoder(), [], 0
    text = text.strip()
    while at < len(text):
        value, end = decoder.raw_decode(text, at)
        objects.append(value)
        at = end
        while at < len(text) and text[at].isspace():
            at += 1
    return objects


def key_paths(value, prefix=""):
    if isinstance(value, dict):
        paths = set()
        for key, item in value.items():
            paths |= {f"{prefix}.{key}"} | key_paths(item, f"{prefix}.{key}")
        return paths
    if isinstance(value, list):
        return set().union(*[key_paths(item, prefix + "[]") for item in value])
    return set()


# The checks, by block name: each gets the command's stdout and a dict
# shared along the page.

def check_list(out, seen):
    services = set(out.split())
    for name in ("Broker", "Executions", "Jobs", "Playbooks", "Policies"):
        assert f"baton.v1.{name}" in services
    assert "grpc.health.v1.Health" in services
    assert "grpc.reflection.v1alpha.ServerReflection" in services


def check_describe(out, seen):
    assert "baton.v1.Policies is a service" in out
    assert "rpc Simulate ( .baton.v1.SimulateRequest )" in out
    assert "message ScheduledRetry {" in out
    assert "// The delay without jitter, capped." in out


def check_health(out, seen):
    assert parse_stream(out) == [{"status": "SERVING"}]


def check_playbook(out, seen):
    assert Path("flaky.yaml").is_file()


def check_register(out, seen):
    playbook = parse_stream(out)[0]["playbook"]
    assert playbook["path"] == "docs/flaky"
    assert playbook["version"] == 1
    assert playbook["steps"] == ["start", "flaky", "end"]
    assert playbook["yaml"] == Path("flaky.yaml").read_text()
    seen["playbook_id"] = playbook["id"]


def check_register_jq(out, seen):
    playbook = parse_stream(out)[0]["playbook"]
    assert (playbook["id"], playbook["version"]) == (seen["playbook_id"], 1)


def check_run(out, seen):
    execution = parse_stream(out)[0]["execution"]
    assert execution["id"] == "1", "the page's later commands name execution 1"
    assert execution["playbookPath"] == "docs/flaky"
    assert execution["state"] == "EXECUTION_STATE_RUNNING"


def check_watch(out, seen):
    events = parse_stream(out)
    names = [event["name"] for event in events]
    assert names[0] == "execution_started"
    assert names[-1] == "execution_completed"
    errors = [e for e in events if e["name"] == "action_error"]
    assert [e["attempt"] for e in errors] == [1, 2]
    assert all(e["error"]["kind"] == "ERROR_KIND_EXCEPTION" for e in errors)
    retries = [e for e in events if e["name"] == "action_retry"]
    assert [e["decision"]["delay"] for e in retries] == ["0.200s", "0.400s"]
    assert all("availableAt" in e for e in retries)
    assert names.count("action_completed") == 1
    assert [int(e["id"]) for e in events] == sorted(int(e["id"]) for e in events)


def check_get_execution(out, seen):
    execution = parse_stream(out)[0]["execution"]
    assert execution["state"] == "EXECUTION_STATE_COMPLETED"
    assert "finishedAt" in execution


def check_enqueue(out, seen):
    [job] = parse_stream(out)[0]["jobs"]
    assert job["id"] == "2", "the page's later commands name job 2"
    assert job["state"] == "JOB_STATE_QUEUED"
    assert job["maxAttempts"] == 2


def check_list_dead(out, seen):
    jobs = parse_stream(out)[0].get("jobs", [])
    assert [job["id"] for job in jobs] == ["2"]
    [job] = jobs
    assert job["state"] == "JOB_STATE_DEAD"
    assert job["attempts"] == 2
    assert job["lastReason"] == "DECISION_REASON_ATTEMPTS_EXHAUSTED"


def check_get_job(out, seen):
    answer = parse_stream(out)[0]
    assert answer["job"]["state"] == "JOB_STATE_DEAD"
    first, second = answer["attempts"]
    assert first["decision"]["retry"] is True
    assert "rescheduledAt" in first
    assert second["decision"]["reason"] == "DECISION_REASON_ATTEMPTS_EXHAUSTED"
    assert "rescheduledAt" not in second


def check_requeue(out, seen):
    job = parse_stream(out)[0]["job"]
    assert job["state"] == "JOB_STATE_QUEUED"
    assert job.get("attempts", 0) == 0


def check_simulate(out, seen):
    answer = parse_stream(out)[0]
    retries = answer["retries"]
    assert [r["afterAttempt"] for r in retries] == [1, 2, 3]
    assert [r["nominal"] for r in retries] == ["0.500s", "1s", "2s"]
    assert [r["min"] for r in retries] == ["0.250s", "0.500s", "1s"]
    assert [r["max"] for r in retries] == ["0.750s", "1.500s", "3s"]
    assert retries[-1]["cumulativeMax"] == "5.250s"
    assert answer["ends"] == "attempts_exhausted after 4 attempts"


CHECKS = {name[6:].replace("_", "-"): fn for name, fn in globals().items()
          if name.startswith("check_")}
# Answers that change while the broker works: asked again until they pass.
SETTLING = {"list-dead", "get-job", "get-execution"}


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    """The scratch directory the page's commands share, and their notes."""
    return tmp_path_factory.mktemp("grpcurl-docs"), {}


def test_every_tested_block_has_a_check():
    names = [name for name, *_ in BLOCKS]
    assert len(names) == len(set(names))
    assert set(names) == set(CHECKS)


@pytest.mark.parametrize("name,options,script,sample", BLOCKS, ids=[b[0] for b in BLOCKS])
def test_doc_command(name, options, script, sample, page, broker_addr, grpcurl, monkeypatch):
    workdir, seen = page
    required = options.get("requires")
    if required and shutil.which(required) is None:
        pytest.skip(f"{required} is not installed")
    monkeypatch.chdir(workdir)
    script = script.replace(DOC_ADDR, broker_addr)

    deadline = time.monotonic() + (SETTLE_DEADLINE if name in SETTLING else 0)
    while True:
        out = run(script, grpcurl)
        try:
            CHECKS[name](out, seen)
            break
        except AssertionError:
            if time.monotonic() >= deadline:
                print(out)
                raise

    if sample is not None and sample.lstrip().startswith("{"):
        actual = set().union(*[key_paths(obj) for obj in parse_stream(out)])
        for obj in parse_stream(sample):
            missing = key_paths(obj) - actual
            assert not missing, f"the page's sample shows fields the answer lacks: {missing}"


def run(script, grpcurl):
    path = os.pathsep.join([str(Path(grpcurl).parent), str(Path(sys.executable).parent),
                           os.environ.get("PATH", "/usr/bin:/bin")])
    env = {"PATH": path, "HOME": str(Path.home()), "LANG": "C.UTF-8"}
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", script], env=env,
                          capture_output=True, text=True, timeout=COMMAND_DEADLINE)
    assert done.returncode == 0, f"exit {done.returncode}:\n{done.stdout}\n{done.stderr}"
    return done.stdout
