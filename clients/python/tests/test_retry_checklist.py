"""The reference checklist (DESIGN §10) with the Python worker: it reports
only outcomes, and the broker evaluates every step's policy."""

from datetime import timedelta

from baton_client._generated.baton.v1 import types_pb2 as t

FAST = {"initial_delay": 0.1, "backoff_multiplier": 2, "jitter": False}


def named(events, name):
    return [event for event in events if event.name == name]


def job_of(events):
    [job_id] = {event.job_id for event in events if event.job_id}
    return job_id


def test_a_raising_handler_is_retried_up_to_max_attempts_then_dead(api, worker):
    @worker.step("always_raises")
    def always_raises(payload, ctx):
        raise ValueError(f"boom on attempt {ctx.attempt}")

    worker.start()
    execution_id = api.run_step("always_raises", {"max_attempts": 5, **FAST})
    events = api.events(execution_id)

    answer = api.job(job_of(events))
    assert answer.job.state == t.JOB_STATE_DEAD
    assert (answer.job.attempts, answer.job.max_attempts) == (5, 5)
    assert answer.job.last_reason == t.DECISION_REASON_ATTEMPTS_EXHAUSTED
    assert [a.number for a in answer.attempts] == [1, 2, 3, 4, 5]
    assert {a.outcome for a in answer.attempts} == {t.ATTEMPT_OUTCOME_FAILED}
    assert {a.decided_by for a in answer.attempts} == {"broker"}
    assert [a.decision.retry for a in answer.attempts] == [True] * 4 + [False]
    last = answer.attempts[-1]
    assert last.error.kind == t.ERROR_KIND_EXCEPTION
    assert (last.error.type, last.error.message) == ("ValueError", "boom on attempt 5")
    assert "raise ValueError" in last.error.traceback
    assert api.execution(execution_id).state == t.EXECUTION_STATE_FAILED


def test_retries_are_spaced_by_the_policy_delays(api, worker):
    @worker.step("spaced")
    def spaced(payload, ctx):
        raise RuntimeError("not yet")

    worker.start()
    execution_id = api.run_step("spaced", {"max_attempts": 4, **FAST})
    events = api.events(execution_id)
    attempts = api.job(job_of(events)).attempts

    expected = [timedelta(milliseconds=ms) for ms in (100, 200, 400)]
    assert [a.decision.delay.ToTimedelta() for a in attempts[:3]] == expected
    for attempt, delay, following in zip(attempts, expected, attempts[1:]):
        finished = attempt.finished_at.ToDatetime()
        rescheduled = attempt.rescheduled_at.ToDatetime()
        assert abs(rescheduled - finished - delay) <= timedelta(milliseconds=20)
        assert following.started_at.ToDatetime() >= rescheduled
    assert not attempts[-1].HasField("rescheduled_at")

    due = [e.available_at.ToDatetime() - e.at.ToDatetime() for e in named(events, "action_retry")]
    assert [abs(gap - delay) <= timedelta(milliseconds=20) for gap, delay in zip(due, expected)] \
        == [True] * 3


def test_stop_when_is_honoured_even_when_retry_when_is_true(api, worker):
    @worker.step("stopped_early")
    def stopped_early(payload, ctx):
        raise RuntimeError("still failing")

    worker.start()
    retry = {"max_attempts": 5, **FAST, "retry_when": "{{ error != None }}",
             "stop_when": "{{ attempt >= 2 }}"}
    events = api.events(api.run_step("stopped_early", retry))

    answer = api.job(job_of(events))
    assert answer.job.state == t.JOB_STATE_DEAD
    assert answer.job.attempts == 2
    reasons = [a.decision.reason for a in answer.attempts]
    assert reasons == [t.DECISION_REASON_RETRY_WHEN, t.DECISION_REASON_STOP_WHEN]
    assert {a.decided_by for a in answer.attempts} == {"broker"}


def test_stop_when_ends_polling_on_a_successful_result(api, worker):
    @worker.step("polling")
    def polling(payload, ctx):
        return {"status": 200 if ctx.attempt >= 3 else 202}

    worker.start()
    retry = {"max_attempts": 5, **FAST, "retry_when": "{{ true }}",
             "stop_when": "{{ data.status == 200 }}"}
    execution_id = api.run_step("polling", retry)
    events = api.events(execution_id)

    answer = api.job(job_of(events))
    assert answer.job.state == t.JOB_STATE_DONE
    assert answer.job.attempts == 3
    assert {a.outcome for a in answer.attempts} == {t.ATTEMPT_OUTCOME_SUCCEEDED}
    reasons = [a.decision.reason for a in answer.attempts]
    assert reasons == [t.DECISION_REASON_RETRY_WHEN] * 2 + [t.DECISION_REASON_STOP_WHEN]
    assert api.execution(execution_id).state == t.EXECUTION_STATE_COMPLETED


def test_a_final_success_after_retries_is_recorded_as_such(api, worker):
    @worker.step("third_time_lucky")
    def third_time_lucky(payload, ctx):
        if ctx.attempt < 3:
            raise ConnectionError(f"flaky on attempt {ctx.attempt}")
        return {"succeeded_on": ctx.attempt}

    worker.start()
    execution_id = api.run_step("third_time_lucky", {"max_attempts": 5, **FAST})
    events = api.events(execution_id)

    answer = api.job(job_of(events))
    assert answer.job.state == t.JOB_STATE_DONE
    assert answer.job.attempts == 3
    outcomes = [a.outcome for a in answer.attempts]
    assert outcomes == [t.ATTEMPT_OUTCOME_FAILED] * 2 + [t.ATTEMPT_OUTCOME_SUCCEEDED]
    assert answer.job.result.struct_value["data"]["succeeded_on"] == 3
    assert [e.name for e in events][-3:] == ["action_completed", "step_completed",
                                            "execution_completed"]
    assert api.execution(execution_id).state == t.EXECUTION_STATE_COMPLETED


def test_every_failed_attempt_logs_an_action_error_event(api, worker):
    @worker.step("noisy")
    def noisy(payload, ctx):
        if ctx.attempt < 3:
            raise KeyError(f"attempt {ctx.attempt}")
        return None

    worker.start()
    events = api.events(api.run_step("noisy", {"max_attempts": 3, **FAST}))

    errors = named(events, "action_error")
    assert [e.attempt for e in errors] == [1, 2]
    assert {e.error.type for e in errors} == {"KeyError"}
    assert all(e.decision.retry for e in errors)
    assert [e.attempt for e in named(events, "action_retry")] == [1, 2]
    assert [e.attempt for e in named(events, "action_started")] == [1, 2, 3]
