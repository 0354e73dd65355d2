//! Reports written together: what a group commit needs whichever backend
//! stores it.
//!
//! A batch holds at most one report per job, so each job's row changes
//! once per transaction; later reports of a job already in the batch (a
//! resend racing its first delivery) wait for the next round and then get
//! the stored answer. Bare jobs leased under the reported token take the
//! bulk path: their verdicts are computed here and written with one
//! statement per table. Everything else (jobs of executions, stale tokens,
//! unknown jobs) goes through the one-job path inside the same
//! transaction.

use std::collections::{HashMap, HashSet};

use serde_json::Value;

use super::Call;
use super::resolve::{self, Ending, Verdict};
use crate::error::Error;
use crate::model::{DecisionRecord, Job, JobState, Report, Resolution, Timestamp};

/// One report in a group commit: what a `Complete` or `Fail` call carries.
#[derive(Debug, Clone)]
pub struct ReportItem {
    /// Which call the report stands for.
    pub call: Call,
    /// The job reported on.
    pub job_id: i64,
    /// The lease token the attempt ran under.
    pub token: i64,
    /// How the attempt ended.
    pub report: Report,
}

/// The answer to each report of a batch, in the batch's order.
pub type Answers = Vec<Result<Resolution, Error>>;

/// Splits `items` into rounds in which no job appears twice, keeping each
/// job's reports in order. Returns the rounds with each item's index in
/// `items`.
pub(super) fn rounds(items: Vec<ReportItem>) -> Vec<Vec<(usize, ReportItem)>> {
    let mut rounds: Vec<Vec<(usize, ReportItem)>> = Vec::new();
    let mut seen: Vec<HashSet<i64>> = Vec::new();
    for (index, item) in items.into_iter().enumerate() {
        let round = seen
            .iter()
            .position(|jobs| !jobs.contains(&item.job_id))
            .unwrap_or_else(|| {
                seen.push(HashSet::new());
                rounds.push(Vec::new());
                seen.len() - 1
            });
        seen[round].insert(item.job_id);
        rounds[round].push((index, item));
    }
    rounds
}

/// Whether a report on `job` under `token` may take the bulk path: a bare
/// job still leased under that token.
pub(super) fn bulk_eligible(job: &Job, token: i64) -> bool {
    job.execution_id.is_none() && is_current(job, token)
}

/// Whether `token` is `job`'s current lease.
pub(super) fn is_current(job: &Job, token: i64) -> bool {
    job.state == JobState::Leased && job.lease_token == Some(token)
}

/// A bare job's ending, decided and ready to be written in bulk.
#[derive(Debug)]
pub(super) struct BulkEnding {
    /// Where the answer goes in the batch.
    pub(super) index: usize,
    pub(super) job_id: i64,
    pub(super) token: i64,
    pub(super) attempt: u32,
    pub(super) state: JobState,
    pub(super) record: DecisionRecord,
    pub(super) ending: Ending,
}

impl BulkEnding {
    /// Applies `job`'s retry policy to the reported ending.
    pub(super) fn decide(index: usize, job: &Job, item: ReportItem) -> BulkEnding {
        let ending = Ending::reported(item.call, item.report);
        let Verdict { record, state } = resolve::decide(job, &ending);
        BulkEnding {
            index,
            job_id: job.id,
            token: item.token,
            attempt: job.attempts,
            state,
            record,
            ending,
        }
    }

    /// The stored result: set only when the job is done.
    pub(super) fn result(&self) -> Option<Value> {
        self.ending.result().cloned()
    }

    /// The stored failure.
    pub(super) fn error(&self) -> Result<Option<Value>, Error> {
        self.ending.error_json()
    }

    /// The answer once the job row says when the next attempt is due.
    pub(super) fn resolution(&self, available_at: Timestamp) -> Resolution {
        let rescheduled = (self.state == JobState::Queued).then_some(available_at);
        resolve::resolution(self.attempt, self.state, &self.record.decision, rescheduled)
    }
}

/// The answer to each report of a batch, filled in round by round.
pub(super) type Slots = Vec<Option<Result<Resolution, Error>>>;

/// A round's reports sorted by the path each takes.
pub(super) struct Sorted<'a> {
    /// Bare jobs' endings, decided, for the bulk statements.
    pub(super) bulk: Vec<BulkEnding>,
    /// Reports for the one-job path, each with its place and its job.
    pub(super) single: Vec<(usize, &'a Job, ReportItem)>,
}

/// The jobs a round reports on.
pub(super) fn job_ids(round: &[(usize, ReportItem)]) -> Vec<i64> {
    round.iter().map(|(_, item)| item.job_id).collect()
}

/// Sorts a round given its jobs as read (and locked): reports on unknown
/// jobs are answered NOT_FOUND here, bare jobs leased under the reported
/// token are decided for the bulk path, the rest go one by one.
pub(super) fn sort_round<'a>(
    round: Vec<(usize, ReportItem)>,
    jobs: &'a HashMap<i64, Job>,
    answers: &mut Slots,
) -> Sorted<'a> {
    let mut sorted = Sorted {
        bulk: Vec::new(),
        single: Vec::new(),
    };
    for (index, item) in round {
        match jobs.get(&item.job_id) {
            None => answers[index] = Some(Err(Error::not_found("job", item.job_id))),
            Some(job) if bulk_eligible(job, item.token) => {
                sorted.bulk.push(BulkEnding::decide(index, job, item));
            }
            Some(job) => sorted.single.push((index, job, item)),
        }
    }
    sorted
}

/// Fills the answers of a written bulk, given each job's `available_at`
/// as the write returned it.
pub(super) fn answer_bulk(
    answers: &mut [Option<Result<Resolution, Error>>],
    bulk: &[BulkEnding],
    written: &HashMap<i64, Timestamp>,
) -> Result<(), Error> {
    for ending in bulk {
        let available_at = written
            .get(&ending.job_id)
            .ok_or_else(|| Error::Corrupt(format!("job {} vanished mid-batch", ending.job_id)))?;
        answers[ending.index] = Some(Ok(ending.resolution(*available_at)));
    }
    Ok(())
}

/// The answers of a finished batch; a report left unanswered is a bug.
pub(super) fn collect(answers: Slots) -> Answers {
    let answer = |slot: Option<_>| slot.unwrap_or_else(|| Err(unanswered()));
    answers.into_iter().map(answer).collect()
}

/// The error for a report a batch failed to answer.
pub(super) fn unanswered() -> Error {
    Error::Corrupt("a report of the batch got no answer".into())
}

/// Whether an error from the one-job path breaks the whole transaction
/// (the database failed) rather than answering that report alone.
pub(super) fn breaks_batch(err: &Error) -> bool {
    matches!(err, Error::Database(_) | Error::Corrupt(_))
}

#[cfg(test)]
mod tests {
    use super::*;
    use baton_dsl::Outcome;

    fn item(job_id: i64) -> ReportItem {
        ReportItem {
            call: Call::Complete,
            job_id,
            token: job_id * 10,
            report: Report {
                outcome: Outcome::success(Value::Null),
                error: None,
                decision: None,
            },
        }
    }

    #[test]
    fn a_job_reported_twice_waits_for_the_next_round() {
        let rounds = rounds(vec![item(1), item(2), item(1), item(3), item(1)]);
        let ids: Vec<Vec<(usize, i64)>> = rounds
            .iter()
            .map(|r| r.iter().map(|(i, it)| (*i, it.job_id)).collect())
            .collect();
        assert_eq!(
            ids,
            vec![vec![(0, 1), (1, 2), (3, 3)], vec![(2, 1)], vec![(4, 1)]]
        );
    }

    #[test]
    fn distinct_jobs_make_one_round() {
        assert_eq!(rounds(vec![item(1), item(2), item(3)]).len(), 1);
        assert!(rounds(Vec::new()).is_empty());
    }
}
