"""A Baton worker in Python.

    from baton_client import Worker

    worker = Worker("127.0.0.1:50051", concurrency=4)

    @worker.task("python")
    def run(payload, ctx):
        return {"echo": payload}

    worker.run()

The worker leases jobs over the broker's `Lease` stream, runs each in a
thread, and reports only how the attempt ended: the broker evaluates the
retry policy (see `docs/retry-policy.md`).
"""

from .worker import AttemptContext, Worker

__all__ = ["AttemptContext", "Worker"]
