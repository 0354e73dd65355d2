ALTER TABLE attempts RESET (fillfactor);
DROP INDEX jobs_idempotency_key_key;
ALTER TABLE jobs ADD CONSTRAINT jobs_idempotency_key_key UNIQUE (idempotency_key);
