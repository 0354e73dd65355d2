-- Reverses 0002.
DROP TRIGGER jobs_notify_queued_update;
DROP TRIGGER jobs_notify_queued_insert;
DROP TABLE wakeups;
DROP TABLE jobs;
DROP TABLE lease_tokens;
