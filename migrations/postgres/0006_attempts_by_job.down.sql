ALTER TABLE attempts DROP CONSTRAINT attempts_pkey;
ALTER TABLE attempts ADD COLUMN id bigserial;
ALTER TABLE attempts ADD CONSTRAINT attempts_pkey PRIMARY KEY (id);
ALTER TABLE attempts ADD CONSTRAINT attempts_lease_token_key UNIQUE (lease_token);
CREATE INDEX attempts_job_idx ON attempts (job_id, id);
