-- One index on attempts instead of three.
--
-- Every lease inserted an attempt row into three indexes: its serial id,
-- its lease token, and (job_id, id). Every reader already knows the job:
-- `Jobs.Get` lists one job's attempts, and a report, a release, a
-- cancellation or the reaper names the job and its lease token. So the
-- key is (job_id, lease_token). Tokens come from one sequence, so they
-- are unique on their own and, within a job, in the order of its leases;
-- attempt numbers are not a key, since requeueing a job counts again
-- from 1.
ALTER TABLE attempts DROP CONSTRAINT attempts_pkey;
ALTER TABLE attempts DROP CONSTRAINT attempts_lease_token_key;
DROP INDEX attempts_job_idx;
ALTER TABLE attempts DROP COLUMN id;
ALTER TABLE attempts ADD CONSTRAINT attempts_pkey PRIMARY KEY (job_id, lease_token);
