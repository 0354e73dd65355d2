-- Playbooks and their executions.
--
-- A playbook is immutable once stored: registering new text under the same
-- path adds a version instead of editing a row, so an execution always runs
-- exactly the text it started with. Executions keep their workload and the
-- template context (`{"workload": ..., "<step>": <result>}`) so that
-- progression and leasing never need to rebuild it from job rows.

CREATE TABLE playbooks (
    id         bigserial   PRIMARY KEY,
    path       text        NOT NULL,
    version    integer     NOT NULL,
    name       text        NOT NULL,
    yaml       text        NOT NULL,
    steps      text[]      NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT playbooks_path_version_key UNIQUE (path, version),
    CONSTRAINT playbooks_version_positive CHECK (version >= 1)
);

CREATE TABLE executions (
    id               bigserial   PRIMARY KEY,
    playbook_id      bigint      NOT NULL REFERENCES playbooks (id),
    playbook_path    text        NOT NULL,
    playbook_version integer     NOT NULL,
    state            text        NOT NULL DEFAULT 'running',
    workload         jsonb       NOT NULL,
    context          jsonb       NOT NULL,
    error            text,
    traceparent      text        NOT NULL DEFAULT '',
    created_at       timestamptz NOT NULL DEFAULT now(),
    finished_at      timestamptz,
    CONSTRAINT executions_state_valid
        CHECK (state IN ('running', 'completed', 'failed', 'cancelled')),
    -- A finished execution says when it finished; a running one has not.
    CONSTRAINT executions_final_has_finished_at
        CHECK ((state = 'running') = (finished_at IS NULL))
);

-- Executions.List filters by path and pages newest first.
CREATE INDEX executions_playbook_path_idx ON executions (playbook_path, id);
