-- Jobs: the unit a worker leases.
--
-- The state machine (queued -> leased -> queued | done | dead | cancelled) is
-- enforced here with named CHECK constraints, so a bug in any broker shows up
-- as a constraint violation instead of a silently inconsistent row.
--
-- Every lease takes a fresh token from `lease_tokens`: the token is the
-- lease's epoch, and a worker holding an older one is fenced out.

CREATE SEQUENCE lease_tokens;

CREATE TABLE jobs (
    id               bigserial   PRIMARY KEY,
    execution_id     bigint      REFERENCES executions (id) ON DELETE CASCADE,
    step             text        NOT NULL DEFAULT '',
    queue            text        NOT NULL,
    kind             text        NOT NULL,
    state            text        NOT NULL DEFAULT 'queued',
    priority         integer     NOT NULL DEFAULT 0,
    attempts         integer     NOT NULL DEFAULT 0,
    max_attempts     integer     NOT NULL,
    available_at     timestamptz NOT NULL DEFAULT now(),
    lease_token      bigint,
    leased_by        text,
    lease_expires_at timestamptz,
    payload          jsonb       NOT NULL DEFAULT '{}',
    retry            jsonb       NOT NULL,
    result           jsonb,
    last_error       jsonb,
    last_reason      text,
    idempotency_key  text,
    traceparent      text        NOT NULL DEFAULT '',
    created_at       timestamptz NOT NULL DEFAULT now(),
    finished_at      timestamptz,
    CONSTRAINT jobs_state_valid
        CHECK (state IN ('queued', 'leased', 'done', 'dead', 'cancelled')),
    CONSTRAINT jobs_leased_has_lease
        CHECK (state <> 'leased' OR (lease_token IS NOT NULL AND lease_expires_at IS NOT NULL)),
    CONSTRAINT jobs_final_has_finished_at
        CHECK ((state IN ('done', 'dead', 'cancelled')) = (finished_at IS NOT NULL)),
    CONSTRAINT jobs_max_attempts_positive CHECK (max_attempts >= 1),
    CONSTRAINT jobs_attempts_in_range CHECK (attempts BETWEEN 0 AND max_attempts),
    CONSTRAINT jobs_idempotency_key_key UNIQUE (idempotency_key)
);

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

-- Wakes lease streams on every broker sharing this database. A trigger
-- rather than a NOTIFY in each code path, so no path that queues a job
-- (enqueue, retry, release, requeue) can forget it; it fires inside the
-- queueing transaction, so listeners hear only of committed jobs, and
-- Postgres folds identical payloads of one transaction into one.
CREATE FUNCTION jobs_notify_queued() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('baton_jobs', json_build_object(
        'queue', NEW.queue,
        'available_at_ms', floor(extract(epoch FROM NEW.available_at) * 1000)::bigint
    )::text);
    RETURN NULL;
END
$$;

CREATE TRIGGER jobs_notify_queued
    AFTER INSERT OR UPDATE OF state, available_at ON jobs
    FOR EACH ROW WHEN (NEW.state = 'queued')
    EXECUTE FUNCTION jobs_notify_queued();
