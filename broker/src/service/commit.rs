//! Group commit: reports from every lease stream and every unary call are
//! written together.
//!
//! One task takes all the reports waiting, writes them in one transaction
//! and answers each. While one batch is written the next one gathers, so
//! batches grow with load by themselves, and a lone report is written at
//! once: no timer ever holds an answer back.

use std::sync::Arc;

use tokio::sync::{Mutex, mpsc, oneshot};
use tonic::Status;

use crate::error::Error;
use crate::metrics::Metrics;
use crate::model::Resolution;
use crate::store::{ReportItem, Store};

/// Most reports written in one transaction; a bigger backlog is written in
/// several, so no answer waits behind an unbounded batch.
const MAX_GROUP: usize = 2_000;
/// Reports submitted and not yet taken by the writer, in submissions.
const QUEUE: usize = 1_024;
/// How often a batch that hit a deadlock or a serialization failure is
/// tried again before its reports are refused.
const RETRIES: u32 = 3;
/// Groups written at once: while one transaction waits for its commit to
/// reach the disk, the next is already being written.
const WRITERS: usize = 2;

type Queue = mpsc::Receiver<Submission>;

/// Each report's answer, in submission order.
pub(crate) type Answers = Vec<Result<Resolution, Status>>;

/// A handle to the broker's group-commit writer; cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct Committer {
    queue: mpsc::Sender<Submission>,
}

#[derive(Debug)]
struct Submission {
    items: Vec<ReportItem>,
    reply: oneshot::Sender<Answers>,
}

impl Committer {
    /// Starts the writer over `store`; it counts resolutions in `metrics`
    /// and stops when every handle is dropped.
    pub(crate) fn spawn(store: Store, metrics: Arc<Metrics>) -> Committer {
        let (queue, submissions) = mpsc::channel(QUEUE);
        let submissions = Arc::new(Mutex::new(submissions));
        for _ in 0..WRITERS {
            tokio::spawn(write_all(
                store.clone(),
                metrics.clone(),
                submissions.clone(),
            ));
        }
        Committer { queue }
    }

    /// Writes `items` with whatever else is waiting; resolves once they
    /// are committed (or refused).
    pub(crate) async fn submit(&self, items: Vec<ReportItem>) -> Answers {
        let count = items.len();
        let (reply, answer) = oneshot::channel();
        let gone = || vec![Err(Status::unavailable("broker shutting down")); count];
        if self.queue.send(Submission { items, reply }).await.is_err() {
            return gone();
        }
        answer.await.unwrap_or_else(|_| gone())
    }
}

/// One writer: takes what waits, writes it, answers it. The queue is
/// locked only while taking, so the next writer gathers meanwhile.
async fn write_all(store: Store, metrics: Arc<Metrics>, queue: Arc<Mutex<Queue>>) {
    loop {
        let group = {
            let mut queue = queue.lock().await;
            let Some(first) = queue.recv().await else {
                return;
            };
            gather(first, &mut queue)
        };
        let items: Vec<ReportItem> = group.iter().flat_map(|s| s.items.iter().cloned()).collect();
        let answers = write(&store, &metrics, items).await;
        answer(group, answers);
    }
}

/// `first` and whatever else is already waiting, up to [`MAX_GROUP`]
/// reports (a single bigger submission still goes whole).
fn gather(first: Submission, queue: &mut mpsc::Receiver<Submission>) -> Vec<Submission> {
    let mut count = first.items.len();
    let mut group = vec![first];
    while count < MAX_GROUP {
        let Ok(next) = queue.try_recv() else { break };
        count += next.items.len();
        group.push(next);
    }
    group
}

/// Writes one group, retrying it whole when the database aborted it for
/// a lock cycle with another broker.
async fn write(store: &Store, metrics: &Metrics, items: Vec<ReportItem>) -> Answers {
    let mut tries = 0;
    loop {
        match store.report_many(items.clone()).await {
            Ok(answers) => return settle(metrics, &items, answers),
            Err(err) if retryable(&err) && tries < RETRIES => {
                tries += 1;
                tracing::debug!(error = %err, tries, "Report batch aborted; writing it again");
            }
            Err(err) if items.len() > 1 && refused_by_database(&err) => {
                return write_each(store, metrics, items).await;
            }
            Err(err) => return vec![Err(Status::from(err)); items.len()],
        }
    }
}

/// Writes a group that the database refused one report at a time, so the
/// report it cannot store is refused alone and the others are written.
async fn write_each(store: &Store, metrics: &Metrics, items: Vec<ReportItem>) -> Answers {
    tracing::warn!(
        count = items.len(),
        "Report batch refused; writing its reports one by one"
    );
    let mut answers = Vec::with_capacity(items.len());
    for item in items {
        let answer = match store.report_many(vec![item.clone()]).await {
            Ok(one) => settle(metrics, std::slice::from_ref(&item), one),
            Err(err) => vec![Err(Status::from(err))],
        };
        answers.extend(answer);
    }
    answers
}

/// An error the database raised about the data or a constraint, as
/// opposed to the connection failing: another report may well succeed.
fn refused_by_database(err: &Error) -> bool {
    matches!(err, Error::Database(sqlx::Error::Database(_)))
}

/// Counts each answer in the metrics and turns errors into statuses.
fn settle(
    metrics: &Metrics,
    items: &[ReportItem],
    answers: Vec<Result<Resolution, Error>>,
) -> Answers {
    let settle = |(item, answer): (&ReportItem, Result<Resolution, Error>)| {
        let resolution = answer?;
        metrics.reported(item.call, item.token, &resolution);
        tracing::debug!(
            job_id = item.job_id,
            attempt = resolution.attempt,
            state = resolution.state.as_str(),
            "{}",
            resolution.message
        );
        Ok(resolution)
    };
    items.iter().zip(answers).map(settle).collect()
}

/// Deadlocks and serialization failures: the transaction was rolled back
/// and may simply be run again.
fn retryable(err: &Error) -> bool {
    let Error::Database(sqlx::Error::Database(db)) = err else {
        return false;
    };
    matches!(db.code().as_deref(), Some("40P01" | "40001"))
}

fn answer(group: Vec<Submission>, answers: Answers) {
    let mut answers = answers.into_iter();
    for submission in group {
        let mine: Answers = answers.by_ref().take(submission.items.len()).collect();
        // The caller may have gone (a closed stream); its jobs are written.
        let _ = submission.reply.send(mine);
    }
}
