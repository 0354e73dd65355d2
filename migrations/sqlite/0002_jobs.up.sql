-- Jobs: the unit a worker leases. The SQLite twin of
-- migrations/postgres/0002, with the same state machine enforced by the
-- same named CHECK constraints (conventions: see 0001).
--
-- Every lease takes a fresh token from `lease_tokens`: the token is the
-- lease's epoch, and a worker holding an older one is fenced out. SQLite
-- has no sequences, so a one-row counter stands in; writers are serialized
-- by the store, so incrementing it inside the claiming transaction never
-- hands out a token twice.

CREATE TABLE lease_tokens (
    id   INTEGER PRIMARY KEY,
    last INTEGER NOT NULL,
    CONSTRAINT lease_tokens_one_row CHECK (id = 1),
    CONSTRAINT lease_tokens_not_negative CHECK (last >= 0)
) STRICT;

-- Starts where a Postgres sequence starts: the first token is 1.
INSERT INTO lease_tokens (id, last) VALUES (1, 0);

CREATE TABLE jobs (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    execution_id     INTEGER REFERENCES executions (id) ON DELETE CASCADE,
    step             TEXT    NOT NULL DEFAULT '',
    queue            TEXT    NOT NULL,
    kind             TEXT    NOT NULL,
    state            TEXT    NOT NULL DEFAULT 'queued',
    priority         INTEGER NOT NULL DEFAULT 0,
    attempts         INTEGER NOT NULL DEFAULT 0,
    max_attempts     INTEGER NOT NULL,
    available_at     INTEGER NOT NULL
        DEFAULT (CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)),
    lease_token      INTEGER,
    leased_by        TEXT,
    lease_expires_at INTEGER,
    payload          TEXT    NOT NULL DEFAULT '{}',
    retry            TEXT    NOT NULL,
    result           TEXT,
    last_error       TEXT,
    last_reason      TEXT,
    idempotency_key  TEXT,
    traceparent      TEXT    NOT NULL DEFAULT '',
    created_at       INTEGER NOT NULL
        DEFAULT (CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)),
    finished_at      INTEGER,
    CONSTRAINT jobs_state_valid
        CHECK (state IN ('queued', 'leased', 'done', 'dead', 'cancelled')),
    CONSTRAINT jobs_leased_has_lease
        CHECK (state <> 'leased' OR (lease_token IS NOT NULL AND lease_expires_at IS NOT NULL)),
    CONSTRAINT jobs_final_has_finished_at
        CHECK ((state IN ('done', 'dead', 'cancelled')) = (finished_at IS NOT NULL)),
    CONSTRAINT jobs_max_attempts_positive CHECK (max_attempts >= 1),
    CONSTRAINT jobs_attempts_in_range CHECK (attempts BETWEEN 0 AND max_attempts),
    CONSTRAINT jobs_idempotency_key_key UNIQUE (idempotency_key),
    CONSTRAINT jobs_json_valid CHECK (json_valid(payload) AND json_valid(retry)
        AND (result IS NULL OR json_valid(result))
        AND (last_error IS NULL OR json_valid(last_error)))
) STRICT;

-- Claiming walks this index in lease order and stops after a batch, so it
-- stays O(log n) however many jobs are queued; finished jobs are not in it.
CREATE INDEX jobs_claim_idx ON jobs (queue, priority, available_at, id)
    WHERE state = 'queued';

-- The earliest due time per queue, for the timer that wakes lease streams
-- waiting on delayed jobs.
CREATE INDEX jobs_due_idx ON jobs (queue, available_at) WHERE state = 'queued';

-- The reaper finds expired leases without scanning finished jobs.
CREATE INDEX jobs_lease_expiry_idx ON jobs (lease_expires_at) WHERE state = 'leased';

CREATE INDEX jobs_execution_idx ON jobs (execution_id, id) WHERE execution_id IS NOT NULL;
CREATE INDEX jobs_state_idx ON jobs (state, id);

-- SQLite has no NOTIFY. The triggers below record what Postgres's
-- `pg_notify` triggers would send, in the same transaction; the store
-- drains this table just before committing and fires the broker's
-- in-process signals once the commit succeeded. Triggers rather than code
-- in each path, as in Postgres, so no path that queues a job can forget
-- the wake-up; a rolled-back transaction takes its rows with it. The
-- table is empty between transactions.
CREATE TABLE wakeups (
    id           INTEGER PRIMARY KEY,
    channel      TEXT    NOT NULL,
    queue        TEXT,
    available_at INTEGER,
    execution_id INTEGER,
    CONSTRAINT wakeups_channel_valid CHECK (channel IN ('baton_jobs', 'baton_events')),
    CONSTRAINT wakeups_payload_present CHECK (CASE channel
        WHEN 'baton_jobs' THEN queue IS NOT NULL AND available_at IS NOT NULL
        ELSE execution_id IS NOT NULL END)
) STRICT;

-- SQLite triggers fire on one kind of statement each: one for INSERT and
-- one for UPDATE together match Postgres's `AFTER INSERT OR UPDATE OF`.
CREATE TRIGGER jobs_notify_queued_insert AFTER INSERT ON jobs
    FOR EACH ROW WHEN NEW.state = 'queued'
BEGIN
    INSERT INTO wakeups (channel, queue, available_at)
    VALUES ('baton_jobs', NEW.queue, NEW.available_at);
END;

CREATE TRIGGER jobs_notify_queued_update AFTER UPDATE OF state, available_at ON jobs
    FOR EACH ROW WHEN NEW.state = 'queued'
BEGIN
    INSERT INTO wakeups (channel, queue, available_at)
    VALUES ('baton_jobs', NEW.queue, NEW.available_at);
END;
