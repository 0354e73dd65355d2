-- Reverses 0002.
DROP TRIGGER jobs_notify_queued ON jobs;
DROP FUNCTION jobs_notify_queued();
DROP TABLE jobs;
DROP SEQUENCE lease_tokens;
