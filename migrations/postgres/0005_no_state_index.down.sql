CREATE INDEX jobs_state_idx ON jobs (state, id);
