"""Real processes for the Python suites: a fresh Postgres database, a
`baton broker serve` on a free port, and a Rust `baton worker`.

Nothing here sleeps to wait: the broker is ready when it logs its
`Listening addr=…` line, and every wait has a deadline.
"""

import glob
import os
import re
import shutil
import subprocess
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ANSI = re.compile(r"\x1b\[[0-9;]*m")
LISTENING = re.compile(r"Listening addr=(\S+)")
START_DEADLINE = 30.0


def baton_bin():
    """The `baton` binary the suites run (`BATON_BIN`, else the debug build)."""
    path = Path(os.environ.get("BATON_BIN", ROOT / "target" / "debug" / "baton"))
    if not path.is_file():
        raise RuntimeError(f"{path} is missing: run `cargo build -p baton` first")
    return str(path)


def admin_url():
    """The Postgres server to create test databases on (`DATABASE_URL`)."""
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgres"):
        raise RuntimeError(
            "DATABASE_URL must name a Postgres server: run scripts/test, or "
            "`source scripts/pg.sh && pg_start` first")
    return url


def psql():
    found = shutil.which("psql") or next(iter(glob.glob("/usr/lib/postgresql/*/bin/psql")), None)
    if found is None:
        raise RuntimeError("psql not found")
    return found


def fresh_database(prefix):
    """Creates an empty database on the `DATABASE_URL` server; returns its URL."""
    url = admin_url()
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    subprocess.run([psql(), url, "-q", "-v", "ON_ERROR_STOP=1", "-c", f"CREATE DATABASE {name}"],
                   check=True, capture_output=True, timeout=60)
    base = url.split("?", 1)[0].rsplit("/", 1)[0]
    return f"{base}/{name}"


class Process:
    """A child process whose combined output is kept, line by line."""

    def __init__(self, args, name):
        self.name = name
        self.lines = []
        self._changed = threading.Condition()
        env = dict(os.environ, NO_COLOR="1", RUST_LOG=os.environ.get("RUST_LOG", "info"))
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, env=env, text=True)
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            with self._changed:
                self.lines.append(ANSI.sub("", line.rstrip("\n")))
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def wait_for(self, pattern, timeout=START_DEADLINE):
        """Returns the first match of `pattern` in the output, waiting for it."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for line in self.lines:
                    match = pattern.search(line)
                    if match:
                        return match
                if self.proc.poll() is not None:
                    raise RuntimeError(f"{self.name} exited ({self.proc.returncode}):\n{self.log()}")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"{self.name} never logged {pattern.pattern}:\n{self.log()}")
                self._changed.wait(left)

    def log(self):
        return "\n".join(self.lines[-200:])

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def start_broker(database_url, *extra):
    """Migrates `database_url` and serves it on a free port; returns
    `(process, "127.0.0.1:PORT")` once the broker logs that it listens."""
    binary = baton_bin()
    subprocess.run([binary, "broker", "migrate", "--database-url", database_url],
                   check=True, capture_output=True, timeout=120)
    broker = Process([binary, "broker", "serve", "--database-url", database_url,
                      "--listen", "127.0.0.1:0", *extra], "baton broker serve")
    try:
        addr = broker.wait_for(LISTENING).group(1)
    except Exception:
        broker.stop()
        raise
    return broker, addr


def start_rust_worker(addr, *extra):
    """A `baton worker` connected to the broker at `addr`, once connected."""
    worker = Process([baton_bin(), "worker", "--broker", f"http://{addr}", *extra],
                     "baton worker")
    try:
        worker.wait_for(re.compile(r"Connected to the broker"))
    except Exception:
        worker.stop()
        raise
    return worker
