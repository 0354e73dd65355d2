"""The worker's own duties: dispatch, heartbeats, cancellation and a
graceful stop."""

import threading

from baton_client._generated.baton.v1 import jobs_pb2, types_pb2 as t
from conftest import LEASE_TIMEOUT

FAST = {"initial_delay": 0.1, "jitter": False}
DEADLINE = 30


def test_a_step_handler_wins_over_the_kinds_handler(api, worker):
    seen = {}

    @worker.step("special")
    def special(payload, ctx):
        seen["special"] = (ctx.step, ctx.kind)
        return "from the step handler"

    @worker.task("python")
    def any_python(payload, ctx):
        seen[ctx.step] = (ctx.step, ctx.kind)
        return {"payload": payload, "workload": ctx.context.get("workload")}

    worker.start()
    assert worker.kinds == ["python"]
    first = api.run_step("special", {"max_attempts": 1})
    second = api.run_step("generic", {"max_attempts": 1},
                          extra="    with:\n      greeting: hello {{ workload.who }}\n")
    for execution_id in (first, second):
        assert api.events(execution_id)[-1].name == "execution_completed"

    assert seen == {"special": ("special", "python"), "generic": ("generic", "python")}
    job = api.jobs.List(jobs_pb2.ListJobsRequest(execution_id=second)).jobs[0]
    data = job.result.struct_value["data"]
    assert data["payload"]["with"]["greeting"] == "hello baton"
    assert data["workload"]["who"] == "baton"


def test_a_long_attempt_is_heartbeated_past_its_lease(api, worker):
    @worker.step("slow")
    def slow(payload, ctx):
        assert not ctx.wait(LEASE_TIMEOUT * 2)
        return "done"

    worker.start()
    events = api.events(api.run_step("slow", {"max_attempts": 3}))

    assert "lease_expired" not in [e.name for e in events]
    assert events[-1].name == "execution_completed"
    answer = api.job(events[-2].job_id)
    assert answer.job.attempts == 1


def test_a_cancelled_job_stops_its_attempt_without_a_report(api, worker):
    stopped = threading.Event()
    reasons = []

    @worker.step("cancellable")
    def cancellable(payload, ctx):
        while not ctx.wait(DEADLINE):
            pass
        reasons.append(ctx.stop_reason)
        stopped.set()
        return "ignored"

    worker.start()
    execution_id = api.run_step("cancellable", {"max_attempts": 3})
    job_id = api.wait_event(execution_id, "action_started").job_id
    api.jobs.Cancel(jobs_pb2.CancelJobRequest(id=job_id))

    assert stopped.wait(DEADLINE)
    assert reasons == ["cancelled"]
    assert api.events(execution_id)[-1].name in ("execution_failed", "execution_cancelled")
    answer = api.job(job_id)
    assert answer.job.state == t.JOB_STATE_CANCELLED
    assert answer.attempts[-1].outcome != t.ATTEMPT_OUTCOME_SUCCEEDED


def test_stop_lets_a_running_attempt_finish_and_report(api, worker):
    started = threading.Event()
    release = threading.Event()

    @worker.step("finishing")
    def finishing(payload, ctx):
        started.set()
        release.wait(DEADLINE)
        return "finished"

    worker.start()
    execution_id = api.run_step("finishing", {"max_attempts": 1})
    assert started.wait(DEADLINE)

    stopper = threading.Thread(target=worker.stop)
    stopper.start()
    assert worker._stopping.wait(DEADLINE)
    release.set()
    stopper.join(DEADLINE)
    assert not stopper.is_alive()

    events = api.events(execution_id)
    assert events[-1].name == "execution_completed"
    assert api.job(events[-2].job_id).job.state == t.JOB_STATE_DONE
