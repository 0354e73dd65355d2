-- What a run with faults must leave behind, as counts. Each row is
-- (kind, name, count): an `invariant` row counts the records that break
-- it and must be 0; a `figure` row says what happened. The tests run this
-- file (baton-testkit's `invariants` module) and so does `bench/chaos`
-- (through the same module), so the suite and the chaos run check the
-- same things.
-- Read-only; it assumes nothing was cancelled.
WITH tallies AS (
    SELECT job_id,
        count(*) FILTER (WHERE outcome IS DISTINCT FROM 'released') AS charged,
        count(*) FILTER (WHERE outcome = 'succeeded') AS successes
    FROM attempts
    GROUP BY job_id
),
-- The events each job's attempt rows imply, as `kind:attempt`: one
-- action_started per lease (a released lease too), one ending event per
-- attempt that ran to an end, one action_retry per retry decided.
implied AS (
    SELECT job_id, array_agg(event ORDER BY event) AS events
    FROM (
        SELECT job_id, 'action_started:' || number AS event FROM attempts
        UNION ALL
        SELECT job_id, CASE outcome
                WHEN 'succeeded' THEN 'action_completed'
                WHEN 'failed' THEN 'action_error'
                ELSE 'lease_expired'
            END || ':' || number
        FROM attempts WHERE outcome IN ('succeeded', 'failed', 'lease_expired')
        UNION ALL
        SELECT job_id, 'action_retry:' || number FROM attempts WHERE retry
    ) implied_events
    GROUP BY job_id
),
recorded AS (
    SELECT job_id, array_agg(kind || ':' || attempt ORDER BY kind || ':' || attempt) AS events
    FROM events
    WHERE job_id IS NOT NULL AND kind IN
        ('action_started', 'action_completed', 'action_error', 'lease_expired', 'action_retry')
    GROUP BY job_id
),
counts (n, kind, name, count) AS (
    SELECT 1, 'figure', 'jobs', count(*) FROM jobs
    UNION ALL SELECT 2, 'figure', 'jobs done', count(*) FROM jobs WHERE state = 'done'
    UNION ALL SELECT 3, 'figure', 'jobs dead', count(*) FROM jobs WHERE state = 'dead'
    UNION ALL SELECT 4, 'figure', 'executions', count(*) FROM executions
    UNION ALL SELECT 5, 'figure', 'attempts', count(*) FROM attempts
    UNION ALL SELECT 6, 'figure', 'attempts succeeded', count(*) FROM attempts
        WHERE outcome = 'succeeded'
    UNION ALL SELECT 7, 'figure', 'attempts failed', count(*) FROM attempts
        WHERE outcome = 'failed'
    UNION ALL SELECT 8, 'figure', 'attempts lease_expired', count(*) FROM attempts
        WHERE outcome = 'lease_expired'
    UNION ALL SELECT 9, 'figure', 'attempts released', count(*) FROM attempts
        WHERE outcome = 'released'
    -- Calls refused for a stale token: the fence at work, not a fault.
    UNION ALL SELECT 10, 'figure', 'fenced calls', count(*) FROM fenced_calls

    UNION ALL SELECT 20, 'invariant', 'jobs neither done nor dead', count(*) FROM jobs
        WHERE state NOT IN ('done', 'dead')
    UNION ALL SELECT 21, 'invariant', 'executions still running', count(*) FROM executions
        WHERE state = 'running'
    UNION ALL SELECT 22, 'invariant', 'jobs whose attempt rows differ from their counter',
        count(*) FROM jobs j LEFT JOIN tallies t ON t.job_id = j.id
        WHERE j.attempts <> coalesce(t.charged, 0)
    UNION ALL SELECT 23, 'invariant', 'attempts never finished', count(*) FROM attempts
        WHERE finished_at IS NULL
    -- A job leased twice at once: two attempts whose runs overlap (an
    -- unfinished one runs forever).
    UNION ALL SELECT 24, 'invariant', 'pairs of attempts of one job that overlap', count(*)
        FROM attempts a JOIN attempts b ON a.job_id = b.job_id AND a.lease_token < b.lease_token
        WHERE a.started_at < coalesce(b.finished_at, 'infinity')
          AND b.started_at < coalesce(a.finished_at, 'infinity')
    -- Stale writes: a worker's report taken when its token was no longer
    -- the job's current lease, because a newer lease had begun, ...
    UNION ALL SELECT 25, 'invariant', 'reports accepted after a newer lease began', count(*)
        FROM attempts a
        WHERE a.outcome IN ('succeeded', 'failed') AND EXISTS (
            SELECT 1 FROM attempts b
            WHERE b.job_id = a.job_id AND b.lease_token > a.lease_token
              AND b.started_at < a.finished_at)
    -- ... or a worker outcome on an attempt whose own worker was refused:
    -- someone else's report was written under its token.
    UNION ALL SELECT 26, 'invariant', 'attempts ended by a report their worker was refused',
        count(*) FROM fenced_calls f JOIN attempts a ON a.job_id = f.job_id AND a.lease_token = f.lease_token
        WHERE f.call IN ('complete', 'fail') AND a.outcome IN ('succeeded', 'failed')
    -- ... or an outcome the payload of a noop job rules out (`fail`: true
    -- fails every attempt, N fails attempts 1..=N): another attempt's.
    UNION ALL SELECT 27, 'invariant', 'noop attempts whose outcome contradicts their payload',
        count(*) FROM attempts a JOIN jobs j ON j.id = a.job_id
        WHERE j.kind = 'noop' AND a.outcome IN ('succeeded', 'failed')
          AND (a.outcome = 'failed') <> CASE jsonb_typeof(j.payload -> 'fail')
                WHEN 'boolean' THEN (j.payload ->> 'fail')::boolean
                WHEN 'number' THEN a.number <= (j.payload ->> 'fail')::numeric
                ELSE false
            END
    UNION ALL SELECT 28, 'invariant', 'jobs whose state contradicts their last attempt',
        count(*) FROM jobs j
        LEFT JOIN tallies t ON t.job_id = j.id
        LEFT JOIN attempts l ON l.job_id = j.id AND l.lease_token = j.lease_token
        WHERE (j.state = 'done'
               AND (l.outcome IS DISTINCT FROM 'succeeded' OR t.successes <> 1))
           OR (j.state = 'dead'
               AND (t.successes > 0 OR l.retry IS NOT FALSE
                    OR coalesce(l.outcome, '') NOT IN ('failed', 'lease_expired')))
    UNION ALL SELECT 29, 'invariant', 'jobs whose events differ from their attempts', count(*)
        FROM jobs j
        LEFT JOIN implied i ON i.job_id = j.id
        LEFT JOIN recorded r ON r.job_id = j.id
        WHERE j.execution_id IS NOT NULL AND i.events IS DISTINCT FROM r.events
    UNION ALL SELECT 30, 'invariant', 'executions whose state contradicts their jobs', count(*)
        FROM executions x
        WHERE (x.state = 'completed')
            = EXISTS (SELECT 1 FROM jobs j WHERE j.execution_id = x.id AND j.state = 'dead')
          AND x.state IN ('completed', 'failed')
)
SELECT kind, name, count FROM counts ORDER BY n;
