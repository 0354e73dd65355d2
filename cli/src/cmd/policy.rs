//! `baton policy simulate`.

use std::path::Path;

use baton_proto::convert::from_duration;
use baton_proto::v1;
use serde_json::json;

use crate::args::ClientArgs;
use crate::client::{Clients, Failure};
use crate::output::{Printer, table};

/// Prints the retry schedule of a step's policy, as the broker computes it.
pub(crate) async fn simulate(
    file: &Path,
    step: Option<&str>,
    client: &ClientArgs,
) -> Result<(), Failure> {
    let playbook_yaml = std::fs::read_to_string(file)
        .map_err(|e| Failure::usage(format!("reading {}: {e}", file.display())))?;
    let mut clients = Clients::connect(client).await?;
    let request = v1::SimulateRequest {
        retry: None,
        playbook_yaml,
        step: step.unwrap_or_default().to_owned(),
    };
    let reply = clients.policies.simulate(request).await?.into_inner();

    let printer = Printer::new(client.output);
    if printer.is_json() {
        for r in &reply.retries {
            println!("{}", retry_json(r));
        }
        println!("{}", json!({ "ends": reply.ends }));
        return Ok(());
    }
    print!("{}", schedule_table(&reply.retries));
    println!("ends: {}", reply.ends);
    Ok(())
}

fn seconds(d: Option<&prost_types::Duration>) -> f64 {
    d.map_or(0.0, |d| from_duration(d).as_secs_f64())
}

fn retry_json(r: &v1::ScheduledRetry) -> serde_json::Value {
    json!({
        "after_attempt": r.after_attempt,
        "nominal_s": seconds(r.nominal.as_ref()),
        "min_s": seconds(r.min.as_ref()),
        "max_s": seconds(r.max.as_ref()),
        "cumulative_min_s": seconds(r.cumulative_min.as_ref()),
        "cumulative_max_s": seconds(r.cumulative_max.as_ref()),
    })
}

fn schedule_table(retries: &[v1::ScheduledRetry]) -> String {
    let rows: Vec<Vec<String>> = retries
        .iter()
        .map(|r| {
            vec![
                r.after_attempt.to_string(),
                format!("{:.3}s", seconds(r.nominal.as_ref())),
                format!(
                    "{:.3}s – {:.3}s",
                    seconds(r.min.as_ref()),
                    seconds(r.max.as_ref())
                ),
                format!(
                    "{:.3}s – {:.3}s",
                    seconds(r.cumulative_min.as_ref()),
                    seconds(r.cumulative_max.as_ref())
                ),
            ]
        })
        .collect();
    table(
        &["AFTER ATTEMPT", "DELAY", "WITH JITTER", "TOTAL WAIT"],
        &rows,
    )
}
