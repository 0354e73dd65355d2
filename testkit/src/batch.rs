//! A batch of noop work that fails at random, for the fault tests and
//! `bench/chaos`: executions of one-step playbooks and bare jobs, each
//! failing its first 0, 1 or 2 attempts of [`MAX_ATTEMPTS`], or every one
//! (`fail: true`), so that some end `done` after retries and some `dead`.
//! Failure counts come from a seeded generator; the seed is printed so
//! that a failing run can be replayed.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail, ensure};
use baton_proto::convert::{to_struct_value, to_value};
use baton_proto::v1;
use baton_proto::v1::executions_client::ExecutionsClient;
use baton_proto::v1::jobs_client::JobsClient;
use baton_proto::v1::playbooks_client::PlaybooksClient;
use serde_json::{Value, json};
use tonic::transport::Channel;
use tonic::{Code, Status};

/// Attempts every job of a batch may take.
pub const MAX_ATTEMPTS: u64 = 3;

/// The failure count that stands for `fail: true`: every attempt fails.
pub const ALWAYS: u64 = MAX_ATTEMPTS;

/// Bare jobs per `Jobs.Enqueue` call.
const ENQUEUE_BATCH: usize = 1000;

/// Pause before watching an execution again after its stream broke (the
/// broker restarting, or its database away).
const WATCH_RETRY: Duration = Duration::from_millis(100);

/// A xorshift generator: reproducible failure counts from a seed.
#[derive(Debug, Clone)]
pub struct Draw {
    state: u64,
}

impl Draw {
    /// A generator seeded with `seed` (0 is replaced, xorshift needs a bit).
    pub fn new(seed: u64) -> Self {
        Draw { state: seed | 1 }
    }

    /// A generator seeded from the clock, announcing its seed on stderr.
    pub fn from_clock() -> Self {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let seed = u64::from(nanos.subsec_nanos());
        eprintln!("failure counts seeded with {seed}");
        Draw::new(seed)
    }

    /// The next value in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.state ^= self.state << 13;
        self.state ^= self.state >> 7;
        self.state ^= self.state << 17;
        self.state % n
    }

    /// `n` failure counts, each 0 to [`ALWAYS`] with equal odds.
    pub fn failure_counts(&mut self, n: usize) -> Vec<u64> {
        (0..n).map(|_| self.below(ALWAYS + 1)).collect()
    }
}

/// The `fail` field of a noop task that fails its first `fails` attempts.
pub fn fail_field(fails: u64) -> Value {
    if fails >= ALWAYS {
        Value::Bool(true)
    } else {
        json!(fails)
    }
}

/// The retry block of every batch job: three attempts, 50 ms apart at first.
pub fn retry_block() -> Value {
    json!({"max_attempts": MAX_ATTEMPTS, "initial_delay": 0.05})
}

/// A one-step playbook at `faults/fail-<fails>` whose noop step runs for
/// `sleep_ms` and fails its first `fails` attempts.
pub fn playbook(fails: u64, sleep_ms: u64) -> String {
    let fail = fail_field(fails);
    format!(
        "apiVersion: noetl.io/v1\nkind: Playbook\n\
         metadata: {{name: fail-{fails}, path: faults/fail-{fails}}}\n\
         workflow:\n  - step: start\n    next: [work]\n  - step: work\n    type: noop\n    \
         fail: {fail}\n    sleep_ms: {sleep_ms}\n    retry: {retry}\n    next: [end]\n  \
         - step: end\n",
        retry = retry_block()
    )
}

/// A bare noop job that runs for `sleep_ms` and fails its first `fails`
/// attempts.
pub fn bare_job(fails: u64, sleep_ms: u64) -> v1::JobSpec {
    let payload = json!({"fail": fail_field(fails), "sleep_ms": sleep_ms});
    v1::JobSpec {
        kind: "noop".to_owned(),
        payload: Some(to_struct_value(&payload)),
        retry: Some(to_value(&retry_block())),
        ..v1::JobSpec::default()
    }
}

/// Registers the playbooks of every failure count; returns their paths,
/// indexed by failure count.
pub async fn register(channel: &Channel, sleep_ms: u64) -> Result<Vec<String>> {
    let mut client = PlaybooksClient::new(channel.clone());
    let mut paths = Vec::new();
    for fails in 0..=ALWAYS {
        let yaml = playbook(fails, sleep_ms);
        let request = v1::RegisterPlaybookRequest { yaml };
        let reply = client.register(request).await?.into_inner();
        paths.push(reply.playbook.context("no playbook")?.path);
    }
    Ok(paths)
}

/// Starts one execution per failure count, of the playbook `paths` holds
/// for it; returns their ids in order.
pub async fn run_executions(
    channel: &Channel,
    paths: &[String],
    fails: &[u64],
) -> Result<Vec<i64>> {
    let mut client = ExecutionsClient::new(channel.clone());
    let mut ids = Vec::with_capacity(fails.len());
    for &n in fails {
        let path = paths.get(usize::try_from(n)?).context("no such playbook")?;
        let request = v1::RunExecutionRequest {
            path: path.clone(),
            ..v1::RunExecutionRequest::default()
        };
        let reply = client.run(request).await?.into_inner();
        ids.push(reply.execution.context("no execution")?.id);
    }
    Ok(ids)
}

/// Enqueues one bare job per failure count; returns how many were stored.
pub async fn enqueue_jobs(channel: &Channel, fails: &[u64], sleep_ms: u64) -> Result<usize> {
    let mut client = JobsClient::new(channel.clone());
    let mut stored = 0;
    for chunk in fails.chunks(ENQUEUE_BATCH) {
        let jobs = chunk.iter().map(|&n| bare_job(n, sleep_ms)).collect();
        let reply = client.enqueue(v1::EnqueueJobsRequest { jobs }).await?;
        stored += reply.into_inner().jobs.len();
    }
    ensure!(
        stored == fails.len(),
        "{stored} of {} jobs stored",
        fails.len()
    );
    Ok(stored)
}

/// Waits until every execution of `ids` has ended, following each one's
/// event stream to its end (a stream that breaks is opened again after
/// its last event); fails after `deadline` naming the first unfinished.
pub async fn wait_until_ended(channel: &Channel, ids: &[i64], deadline: Duration) -> Result<()> {
    let mut client = ExecutionsClient::new(channel.clone());
    let mut current = 0;
    let all = async {
        for id in ids {
            current = *id;
            wait_for_end(&mut client, *id).await?;
        }
        Ok::<_, anyhow::Error>(())
    };
    match tokio::time::timeout(deadline, all).await {
        Ok(waited) => waited,
        Err(_) => bail!("execution {current} has not ended within {deadline:?}"),
    }
}

async fn wait_for_end(client: &mut ExecutionsClient<Channel>, id: i64) -> Result<()> {
    let mut after = 0;
    loop {
        match follow(client, id, &mut after).await {
            Ok(true) => return Ok(()),
            Ok(false) => {}
            Err(status) if transient(&status) => {}
            Err(status) => return Err(status.into()),
        }
        tokio::time::sleep(WATCH_RETRY).await;
    }
}

/// Streams the events of execution `id` after `after` until the stream
/// ends, moving `after` on; true when the execution has ended.
async fn follow(
    client: &mut ExecutionsClient<Channel>,
    id: i64,
    after: &mut i64,
) -> Result<bool, Status> {
    let request = v1::WatchEventsRequest {
        execution_id: id,
        after_event_id: *after,
        follow: Some(true),
    };
    let mut stream = client.watch_events(request).await?.into_inner();
    while let Some(event) = stream.message().await? {
        *after = event.id;
    }
    let reply = client.get(v1::GetExecutionRequest { id }).await?;
    let execution = reply.into_inner().execution.unwrap_or_default();
    Ok(execution.state() != v1::ExecutionState::Running)
}

/// Failures a restarting broker or an absent database cause.
fn transient(status: &Status) -> bool {
    matches!(
        status.code(),
        Code::Unavailable | Code::Unknown | Code::Cancelled | Code::DeadlineExceeded
    )
}
