-- Reverses 0003.
DROP TABLE fenced_calls;
DROP TRIGGER events_notify;
DROP TABLE events;
DROP TABLE attempts;
