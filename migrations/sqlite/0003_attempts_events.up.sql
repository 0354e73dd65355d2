-- Attempts, events and fenced calls: the history nobody overwrites. The
-- SQLite twin of migrations/postgres/0003 (conventions: see 0001).
--
-- One attempt row per lease, keyed by its token, holds how the run ended
-- and the whole retry decision taken after it, so `Jobs.Get` can explain
-- every delay. Complete and Fail look the row up by token to answer a
-- repeated call with the same resolution.

CREATE TABLE attempts (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id         INTEGER NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    number         INTEGER NOT NULL,
    lease_token    INTEGER NOT NULL,
    worker         TEXT    NOT NULL,
    started_at     INTEGER NOT NULL
        DEFAULT (CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)),
    finished_at    INTEGER,
    outcome        TEXT,
    error          TEXT,
    status_code    INTEGER,
    result         TEXT,
    -- 0 or 1: SQLite has no boolean type.
    retry          INTEGER,
    reason         TEXT,
    raw_delay_ms   INTEGER,
    jitter_factor  REAL,
    delay_ms       INTEGER,
    decided_by     TEXT,
    rescheduled_at INTEGER,
    message        TEXT,
    CONSTRAINT attempts_lease_token_key UNIQUE (lease_token),
    CONSTRAINT attempts_number_positive CHECK (number >= 1),
    CONSTRAINT attempts_outcome_valid CHECK (outcome IN
        ('succeeded', 'failed', 'lease_expired', 'released', 'cancelled')),
    -- An attempt has an outcome exactly when it has finished.
    CONSTRAINT attempts_finished_has_outcome
        CHECK ((finished_at IS NULL) = (outcome IS NULL)),
    CONSTRAINT attempts_decided_by_valid CHECK (decided_by IN ('worker', 'broker')),
    CONSTRAINT attempts_delays_not_negative
        CHECK (raw_delay_ms >= 0 AND delay_ms >= 0),
    CONSTRAINT attempts_retry_boolean CHECK (retry IN (0, 1)),
    CONSTRAINT attempts_json_valid CHECK ((error IS NULL OR json_valid(error))
        AND (result IS NULL OR json_valid(result)))
) STRICT;

CREATE INDEX attempts_job_idx ON attempts (job_id, id);

-- An execution's history, in id order. The store serializes every writer,
-- so ids of one execution commit in order and a watcher resuming "after
-- id N" misses nothing (Postgres gets the same from the execution's row
-- lock).
CREATE TABLE events (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    execution_id INTEGER NOT NULL REFERENCES executions (id) ON DELETE CASCADE,
    job_id       INTEGER REFERENCES jobs (id) ON DELETE CASCADE,
    step         TEXT    NOT NULL DEFAULT '',
    kind         TEXT    NOT NULL,
    attempt      INTEGER,
    max_attempts INTEGER,
    at           INTEGER NOT NULL
        DEFAULT (CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)),
    details      TEXT    NOT NULL DEFAULT '{}',
    CONSTRAINT events_kind_valid CHECK (kind IN (
        'execution_started', 'step_started', 'action_started', 'action_error',
        'action_retry', 'action_completed', 'step_completed', 'step_failed',
        'execution_completed', 'execution_failed', 'lease_expired',
        'execution_cancelled')),
    CONSTRAINT events_details_json CHECK (json_valid(details))
) STRICT;

CREATE INDEX events_execution_idx ON events (execution_id, id);

-- Wakes WatchEvents streams (see `wakeups` in 0002 for why a table).
CREATE TRIGGER events_notify AFTER INSERT ON events
    FOR EACH ROW
BEGIN
    INSERT INTO wakeups (channel, execution_id) VALUES ('baton_events', NEW.execution_id);
END;

-- Calls refused for carrying a stale lease token: evidence that a worker
-- lost its lease (a pause, a partition) and was kept from overwriting the
-- job's newer attempt.
CREATE TABLE fenced_calls (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id        INTEGER NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    call          TEXT    NOT NULL,
    lease_token   INTEGER NOT NULL,
    current_token INTEGER,
    job_state     TEXT    NOT NULL,
    at            INTEGER NOT NULL
        DEFAULT (CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)),
    CONSTRAINT fenced_calls_call_valid
        CHECK (call IN ('complete', 'fail', 'heartbeat', 'release'))
) STRICT;

CREATE INDEX fenced_calls_job_idx ON fenced_calls (job_id);
