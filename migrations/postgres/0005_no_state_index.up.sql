-- One index fewer on every write of a job.
--
-- `jobs_state_idx` took an entry each time a job was enqueued, leased and
-- ended. The rows that are looked up by state are the unfinished ones, and
-- the partial indexes already hold exactly those (`jobs_due_idx` the
-- queued, `jobs_lease_expiry_idx` the leased); finished jobs are listed
-- newest first, which the primary key serves.
DROP INDEX jobs_state_idx;
