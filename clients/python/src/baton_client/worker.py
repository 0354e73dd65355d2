"""The worker: leases jobs, runs them in threads, reports how they ended.

It holds no retry policy. `Complete` and `Fail` carry only the outcome, and
the broker evaluates the step's policy itself (the attempt's `decided_by` is
`broker`), so a retry block behaves the same whichever worker ran it.
"""

import json
import logging
import os
import queue
import socket
import threading
import time
import traceback
from concurrent.futures import ThreadPoolExecutor

import grpc
from google.protobuf import json_format, struct_pb2

from ._generated.baton.v1 import broker_pb2, broker_pb2_grpc, types_pb2

log = logging.getLogger("baton_client")

# Codes after which reconnecting cannot help: the request itself is wrong.
FATAL_CODES = (
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.UNAUTHENTICATED,
    grpc.StatusCode.PERMISSION_DENIED,
    grpc.StatusCode.UNIMPLEMENTED,
)
# Codes after which the same `Complete` or `Fail` is sent again: the broker
# answers a repeat with the same token with the same resolution.
RETRYABLE_CODES = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
REPORT_TRIES = 6
RECONNECT_MAX = 5.0


class AttemptContext:
    """What a handler knows about the attempt it runs.

    A handler that runs long should check `stopped` (or sleep with `wait`)
    now and then: it becomes true when the job is cancelled, the lease is
    lost, or the worker's grace period at shutdown has run out. Whatever
    the handler returns after that is not reported.
    """

    def __init__(self, job):
        self.job_id = job.id
        self.lease_token = job.lease_token
        self.execution_id = job.execution_id
        self.step = job.step
        self.queue = job.queue
        self.kind = job.kind
        self.attempt = job.attempt
        self.max_attempts = job.max_attempts
        self.traceparent = job.traceparent
        # `workload` and earlier steps' results by step name.
        self.context = _plain(json_format.MessageToDict(job.context))
        # Why the attempt was stopped: cancelled, lease_lost or shutdown.
        self.stop_reason = None
        # The broker's `Resolution` once the attempt was reported.
        self.resolution = None
        self._stop = threading.Event()
        self._last_beat = time.monotonic()

    @property
    def stopped(self):
        """True once the attempt should stop; its result will be dropped."""
        return self._stop.is_set()

    def wait(self, seconds):
        """Sleeps up to `seconds`; returns True early if the attempt stops."""
        return self._stop.wait(seconds)

    def _halt(self, reason):
        if not self._stop.is_set():
            self.stop_reason = reason
            self._stop.set()


class Worker:
    """A Baton worker running Python functions.

    `target` is the broker's address (`127.0.0.1:50051`; an `http://`
    prefix is accepted). `queues` are the queues it leases from,
    `concurrency` how many attempts run at once (the credits it grants),
    `name` how it appears in attempts. `kinds` overrides the task kinds it
    announces; by default, those of its registered handlers. `grace` is how
    long `stop()` lets running attempts finish.
    """

    def __init__(self, target, queues=("default",), concurrency=4, name=None,
                 kinds=None, grace=30.0, metadata=(), channel=None):
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.target = target.split("://", 1)[-1]
        self.queues = list(queues)
        self.concurrency = concurrency
        self.name = name or f"{socket.gethostname()}-{os.getpid()}"
        self.grace = grace
        self._kinds = list(kinds) if kinds is not None else None
        self._metadata = tuple(metadata)
        self._channel = channel
        self._own_channel = channel is None
        self._tasks = {}
        self._steps = {}
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._active = {}
        self._requests = None
        self._call = None
        self._stopping = threading.Event()
        # Set once the lease stream is closed: heartbeats go on until then.
        self._closed = threading.Event()
        self._heartbeat_interval = None
        self._thread = None
        self._error = None

    # Registration.

    def task(self, kind):
        """Registers the decorated function for every job of task `kind`."""
        def register(fn):
            self._tasks[kind] = fn
            return fn
        return register

    def step(self, name, kind="python"):
        """Registers the decorated function for the playbook step `name`
        (of task `kind`); it wins over a `task` handler of the same kind."""
        def register(fn):
            self._steps[name] = (kind, fn)
            return fn
        return register

    @property
    def kinds(self):
        """The task kinds announced in `Hello`."""
        if self._kinds is not None:
            return self._kinds
        kinds = set(self._tasks) | {kind for kind, _ in self._steps.values()}
        return sorted(kinds)

    # Life cycle.

    def start(self):
        """Connects and serves in a background thread; returns at once."""
        if not self._tasks and not self._steps:
            raise ValueError("register a handler with @worker.task or @worker.step first")
        self._stopping.clear()
        self._closed.clear()
        if self._channel is None:
            self._channel = grpc.insecure_channel(self.target)
        self._stub = broker_pb2_grpc.BrokerStub(self._channel)
        self._pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="baton-attempt")
        self._beater = threading.Thread(target=self._heartbeats, name="baton-heartbeat",
                                        daemon=True)
        self._thread = threading.Thread(target=self._serve, name="baton-lease", daemon=True)
        self._beater.start()
        self._thread.start()
        return self

    def run(self):
        """Serves until `stop()` is called or Ctrl-C, then stops gracefully."""
        self.start()
        try:
            while self._thread.is_alive():
                self._thread.join(0.5)
        except KeyboardInterrupt:
            pass
        finally:
            self.stop()
        if self._error is not None:
            raise self._error

    def stop(self, grace=None):
        """Takes no new jobs, lets running attempts finish for up to `grace`
        seconds (default: the worker's), hands the rest back to the broker
        with `Release`, and closes the lease stream."""
        if self._thread is None:
            return
        self._stopping.set()
        deadline = time.monotonic() + (self.grace if grace is None else grace)
        with self._idle:
            while self._active and time.monotonic() < deadline:
                self._idle.wait(deadline - time.monotonic())
            leftovers = list(self._active.values())
        for ctx in leftovers:
            ctx._halt("shutdown")
            self._release(ctx)

        call = self._call
        if call is not None:
            call.cancel()
        self._thread.join()
        self._closed.set()
        self._beater.join()
        self._pool.shutdown(wait=False)
        if self._own_channel:
            self._channel.close()
            self._channel = None
        self._thread = None

    # The lease stream.

    def _serve(self):
        backoff = 0.1
        while not self._stopping.is_set():
            try:
                self._session()
                backoff = 0.1
            except grpc.RpcError as error:
                if self._stopping.is_set():
                    break
                if error.code() in FATAL_CODES:
                    log.error("Lease stream refused: %s", error.details())
                    self._error = error
                    self._stopping.set()
                    break
                log.warning("Lease stream broke, reconnecting: %s", error.code())
            if self._stopping.wait(backoff):
                break
            backoff = min(backoff * 2, RECONNECT_MAX)

    def _session(self):
        requests = queue.Queue()
        hello = broker_pb2.Hello(worker=self.name, queues=self.queues, kinds=self.kinds)
        requests.put(broker_pb2.LeaseRequest(hello=hello))
        self._call = self._stub.Lease(_drain(requests), metadata=self._metadata)
        try:
            for response in self._call:
                if response.HasField("welcome"):
                    self._welcome(response.welcome, requests)
                elif response.HasField("job"):
                    self._leased(response.job)
        finally:
            with self._lock:
                self._requests = None
            requests.put(None)

    def _welcome(self, welcome, requests):
        self._heartbeat_interval = welcome.heartbeat_interval.ToTimedelta().total_seconds()
        log.info("Connected to the broker session=%s", welcome.session)
        with self._lock:
            self._requests = requests
            free = self.concurrency - len(self._active)
        self._grant(free)

    def _grant(self, credits):
        with self._lock:
            requests = self._requests
        if credits > 0 and requests is not None and not self._stopping.is_set():
            requests.put(broker_pb2.LeaseRequest(credits=broker_pb2.Credits(credits=credits)))

    def _leased(self, job):
        ctx = AttemptContext(job)
        if self._stopping.is_set():
            self._release(ctx)
            return
        with self._lock:
            self._active[job.id] = ctx
        payload = _plain(json_format.MessageToDict(job.payload))
        self._pool.submit(self._attempt, ctx, self._handler(job), payload)

    def _handler(self, job):
        kind, fn = self._steps.get(job.step, (None, None))
        if fn is not None and kind == job.kind:
            return fn
        return self._tasks.get(job.kind)

    # One attempt.

    def _attempt(self, ctx, handler, payload):
        try:
            outcome, failed = _run(ctx, handler, payload)
            if not ctx.stopped:
                self._report(ctx, outcome, failed)
            else:
                log.info("Attempt stopped job_id=%s reason=%s", ctx.job_id, ctx.stop_reason)
        except Exception:  # the worker must outlive any one attempt
            log.exception("Reporting failed job_id=%s", ctx.job_id)
        finally:
            with self._idle:
                self._active.pop(ctx.job_id, None)
                self._idle.notify_all()
            self._grant(1)

    def _report(self, ctx, outcome, failed):
        method = self._stub.Fail if failed else self._stub.Complete
        request_type = broker_pb2.FailRequest if failed else broker_pb2.CompleteRequest
        request = request_type(job_id=ctx.job_id, lease_token=ctx.lease_token, outcome=outcome)
        for attempt in range(REPORT_TRIES):
            try:
                response = method(request, metadata=self._metadata, timeout=30)
            except grpc.RpcError as error:
                if error.code() in RETRYABLE_CODES and attempt + 1 < REPORT_TRIES:
                    time.sleep(min(0.1 * 2 ** attempt, 2.0))
                    continue
                log.warning("Report refused job_id=%s code=%s: %s",
                            ctx.job_id, error.code(), error.details())
                return
            ctx.resolution = response.resolution
            log.info("Attempt reported job_id=%s attempt=%s state=%s", ctx.job_id,
                     ctx.attempt, types_pb2.JobState.Name(response.resolution.state))
            return

    def _release(self, ctx):
        request = broker_pb2.ReleaseRequest(job_id=ctx.job_id, lease_token=ctx.lease_token)
        try:
            self._stub.Release(request, metadata=self._metadata, timeout=10)
        except grpc.RpcError as error:
            log.warning("Release refused job_id=%s: %s", ctx.job_id, error.code())

    # Heartbeats.

    def _heartbeats(self):
        while not self._closed.wait(self._tick()):
            interval = self._heartbeat_interval
            if interval is None:
                continue
            with self._lock:
                running = [ctx for ctx in self._active.values() if not ctx.stopped]
            for ctx in running:
                if time.monotonic() - ctx._last_beat >= interval:
                    self._beat(ctx, interval)

    def _tick(self):
        interval = self._heartbeat_interval or 1.0
        return max(0.05, min(0.5, interval / 4))

    def _beat(self, ctx, interval):
        ctx._last_beat = time.monotonic()
        request = broker_pb2.HeartbeatRequest(job_id=ctx.job_id, lease_token=ctx.lease_token)
        try:
            response = self._stub.Heartbeat(request, metadata=self._metadata,
                                            timeout=max(interval, 1.0))
        except grpc.RpcError as error:
            if error.code() in (grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.NOT_FOUND):
                ctx._halt("lease_lost")
            else:
                log.warning("Heartbeat failed job_id=%s: %s", ctx.job_id, error.code())
            return
        if response.directive == broker_pb2.DIRECTIVE_CANCELLED:
            ctx._halt("cancelled")


def _plain(value):
    """Protobuf's Struct has one number type, a double: give whole numbers
    back as ints, as the Rust side does, so `fail: 2` arrives as 2."""
    if isinstance(value, float) and value.is_integer() and abs(value) <= 2**53:
        return int(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _drain(requests):
    """The lease stream's outgoing messages, until `None`."""
    while True:
        item = requests.get()
        if item is None:
            return
        yield item


def _run(ctx, handler, payload):
    """Runs the handler; returns the `Outcome` and whether it failed."""
    if handler is None:
        message = f"no handler for step {ctx.step!r} or task kind {ctx.kind!r}"
        error = types_pb2.TaskError(kind=types_pb2.ERROR_KIND_INVALID_TASK,
                                    type="NoHandler", message=message)
        return types_pb2.Outcome(error=error), True
    try:
        value = handler(payload, ctx)
        result = json.loads(json.dumps({"data": value}, allow_nan=False))
    except Exception as exc:
        error = types_pb2.TaskError(kind=types_pb2.ERROR_KIND_EXCEPTION,
                                    type=type(exc).__name__, message=str(exc),
                                    traceback=traceback.format_exc())
        return types_pb2.Outcome(error=error), True
    return types_pb2.Outcome(result=json_format.ParseDict(result, struct_pb2.Value())), False
