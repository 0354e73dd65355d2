-- Fewer index writes on the path every job takes.
--
-- A job row is written three times (enqueued, leased, ended) and none of
-- those writes can stay on its page, since each changes `state`, which
-- indexes cover; so every index on `jobs` gets an entry per write. Most
-- jobs carry no idempotency key: a partial unique index leaves them out.
ALTER TABLE jobs DROP CONSTRAINT jobs_idempotency_key_key;
CREATE UNIQUE INDEX jobs_idempotency_key_key ON jobs (idempotency_key)
    WHERE idempotency_key IS NOT NULL;

-- An attempt row is inserted when its lease is granted and updated once
-- when it ends, in columns no index covers. Room left free on each page
-- lets that update be a heap-only tuple: no new entry in any of the
-- table's three indexes.
ALTER TABLE attempts SET (fillfactor = 50);
