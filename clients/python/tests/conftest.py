"""A real Postgres database and `baton broker serve` (no Rust worker): the
Python `Worker` under test is the only one leasing jobs."""

import itertools
import json
import sys
from pathlib import Path

import grpc
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "tests" / "python"))
import baton_harness  # noqa: E402

from baton_client import Worker  # noqa: E402
from baton_client._generated.baton.v1 import (  # noqa: E402
    executions_pb2, executions_pb2_grpc, jobs_pb2, jobs_pb2_grpc,
    playbooks_pb2, playbooks_pb2_grpc,
)

# Short leases, so that the heartbeat test outlives one in a few seconds.
LEASE_TIMEOUT = 2.0
FINAL_DEADLINE = 60.0
_names = itertools.count(1)


@pytest.fixture(scope="session")
def broker_addr():
    database = baton_harness.fresh_database("python_client")
    broker, addr = baton_harness.start_broker(database, "--lease-timeout", f"{LEASE_TIMEOUT}s")
    yield addr
    broker.stop()


class Api:
    """The broker's client services, with the waits the tests need."""

    def __init__(self, addr):
        self.addr = addr
        self.channel = grpc.insecure_channel(addr)
        self.playbooks = playbooks_pb2_grpc.PlaybooksStub(self.channel)
        self.executions = executions_pb2_grpc.ExecutionsStub(self.channel)
        self.jobs = jobs_pb2_grpc.JobsStub(self.channel)

    def run_step(self, step, retry, extra=""):
        """Registers a playbook whose one task step is `step` (type python,
        run by the Python worker), runs it, and returns the execution id."""
        path = f"tests/python-client/{step}-{next(_names)}"
        yaml = PLAYBOOK.format(path=path, step=step, retry=json.dumps(retry), extra=extra)
        self.playbooks.Register(playbooks_pb2.RegisterPlaybookRequest(yaml=yaml), timeout=10)
        request = executions_pb2.RunExecutionRequest(path=path)
        return self.executions.Run(request, timeout=10).execution.id

    def events(self, execution_id, follow=True):
        """The execution's events; with `follow`, once it has ended."""
        request = executions_pb2.WatchEventsRequest(execution_id=execution_id, follow=follow)
        return list(self.executions.WatchEvents(request, timeout=FINAL_DEADLINE))

    def wait_event(self, execution_id, name):
        """The first `name` event of the execution, as soon as it happens."""
        request = executions_pb2.WatchEventsRequest(execution_id=execution_id)
        for event in self.executions.WatchEvents(request, timeout=FINAL_DEADLINE):
            if event.name == name:
                return event
        raise AssertionError(f"execution {execution_id} ended without {name}")

    def execution(self, execution_id):
        request = executions_pb2.GetExecutionRequest(id=execution_id)
        return self.executions.Get(request, timeout=10).execution

    def job(self, job_id):
        return self.jobs.Get(jobs_pb2.GetJobRequest(id=job_id), timeout=10)


PLAYBOOK = """\
apiVersion: noetl.io/v1
kind: Playbook
metadata:
  name: python-client
  path: {path}
workload:
  who: baton
workflow:
  - step: start
    next:
      - {step}
  - step: {step}
    type: python
    code: "def main(): pass  # run by the baton_client worker"
    retry: {retry}
{extra}    next:
      - end
  - step: end
"""


@pytest.fixture
def api(broker_addr):
    api = Api(broker_addr)
    yield api
    api.channel.close()


@pytest.fixture
def worker(broker_addr, request):
    """A Python worker for this test; register handlers, then `start()`."""
    worker = Worker(broker_addr, concurrency=2, name=f"py-{request.node.name}"[:60], grace=10)
    yield worker
    worker.stop()
