-- Attempts, events and fenced calls: the history nobody overwrites.
--
-- One attempt row per lease, keyed by its token, holds how the run ended
-- and the whole retry decision taken after it, so `Jobs.Get` can explain
-- every delay. Complete and Fail look the row up by token to answer a
-- repeated call with the same resolution.

CREATE TABLE attempts (
    id             bigserial        PRIMARY KEY,
    job_id         bigint           NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    number         integer          NOT NULL,
    lease_token    bigint           NOT NULL,
    worker         text             NOT NULL,
    started_at     timestamptz      NOT NULL DEFAULT now(),
    finished_at    timestamptz,
    outcome        text,
    error          jsonb,
    status_code    integer,
    result         jsonb,
    retry          boolean,
    reason         text,
    raw_delay_ms   bigint,
    jitter_factor  double precision,
    delay_ms       bigint,
    decided_by     text,
    rescheduled_at timestamptz,
    message        text,
    CONSTRAINT attempts_lease_token_key UNIQUE (lease_token),
    CONSTRAINT attempts_number_positive CHECK (number >= 1),
    CONSTRAINT attempts_outcome_valid CHECK (outcome IN
        ('succeeded', 'failed', 'lease_expired', 'released', 'cancelled')),
    -- An attempt has an outcome exactly when it has finished.
    CONSTRAINT attempts_finished_has_outcome
        CHECK ((finished_at IS NULL) = (outcome IS NULL)),
    CONSTRAINT attempts_decided_by_valid CHECK (decided_by IN ('worker', 'broker')),
    CONSTRAINT attempts_delays_not_negative
        CHECK (raw_delay_ms >= 0 AND delay_ms >= 0)
);

CREATE INDEX attempts_job_idx ON attempts (job_id, id);

-- An execution's history, in id order. Rows are inserted while the
-- execution's row is locked, so ids of one execution commit in order and a
-- watcher resuming "after id N" misses nothing.
CREATE TABLE events (
    id           bigserial   PRIMARY KEY,
    execution_id bigint      NOT NULL REFERENCES executions (id) ON DELETE CASCADE,
    job_id       bigint      REFERENCES jobs (id) ON DELETE CASCADE,
    step         text        NOT NULL DEFAULT '',
    kind         text        NOT NULL,
    attempt      integer,
    max_attempts integer,
    at           timestamptz NOT NULL DEFAULT now(),
    details      jsonb       NOT NULL DEFAULT '{}',
    CONSTRAINT events_kind_valid CHECK (kind IN (
        'execution_started', 'step_started', 'action_started', 'action_error',
        'action_retry', 'action_completed', 'step_completed', 'step_failed',
        'execution_completed', 'execution_failed', 'lease_expired',
        'execution_cancelled'))
);

CREATE INDEX events_execution_idx ON events (execution_id, id);

-- Wakes WatchEvents streams on every broker.
CREATE FUNCTION events_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('baton_events', NEW.execution_id::text);
    RETURN NULL;
END
$$;

CREATE TRIGGER events_notify AFTER INSERT ON events
    FOR EACH ROW EXECUTE FUNCTION events_notify();

-- Calls refused for carrying a stale lease token: evidence that a worker
-- lost its lease (a pause, a partition) and was kept from overwriting the
-- job's newer attempt.
CREATE TABLE fenced_calls (
    id            bigserial   PRIMARY KEY,
    job_id        bigint      NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    call          text        NOT NULL,
    lease_token   bigint      NOT NULL,
    current_token bigint,
    job_state     text        NOT NULL,
    at            timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT fenced_calls_call_valid
        CHECK (call IN ('complete', 'fail', 'heartbeat', 'release'))
);

CREATE INDEX fenced_calls_job_idx ON fenced_calls (job_id);
