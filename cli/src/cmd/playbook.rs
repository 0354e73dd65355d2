//! `baton playbook register | list | get`.

use std::path::Path;

use baton_proto::v1;

use crate::args::ClientArgs;
use crate::client::{Clients, Failure};
use crate::output::Printer;
use crate::render;

const COLUMNS: &[(&str, &str)] = &[
    ("path", "PATH"),
    ("version", "VERSION"),
    ("name", "NAME"),
    ("steps", "STEPS"),
    ("created_at", "REGISTERED"),
];

/// Registers a playbook file; a refused one prints every problem, exit 2.
pub(crate) async fn register(file: &Path, client: &ClientArgs) -> Result<(), Failure> {
    let mut clients = Clients::connect(client).await?;
    let playbook = register_file(&mut clients, file).await?;
    Printer::new(client.output).record(&render::playbook(&playbook));
    Ok(())
}

/// Reads and registers a playbook file, returning what the broker stored.
pub(crate) async fn register_file(
    clients: &mut Clients,
    file: &Path,
) -> Result<v1::Playbook, Failure> {
    let yaml = std::fs::read_to_string(file)
        .map_err(|e| Failure::usage(format!("reading {}: {e}", file.display())))?;
    let reply = clients
        .playbooks
        .register(v1::RegisterPlaybookRequest { yaml })
        .await
        .map_err(|s| refused(file, s))?;
    reply
        .into_inner()
        .playbook
        .ok_or_else(|| Failure::failed("the broker returned no playbook"))
}

/// A refusal names the file before the broker's list of problems.
fn refused(file: &Path, status: tonic::Status) -> Failure {
    let mut failure = Failure::from(status);
    failure.message = format!("{} was refused:\n{}", file.display(), failure.message);
    failure
}

/// Lists the latest version of every playbook.
pub(crate) async fn list(client: &ClientArgs) -> Result<(), Failure> {
    let mut clients = Clients::connect(client).await?;
    let reply = clients
        .playbooks
        .list(v1::ListPlaybooksRequest::default())
        .await?
        .into_inner();
    let records: Vec<_> = reply.playbooks.iter().map(render::playbook).collect();
    Printer::new(client.output).records(&records, COLUMNS);
    Ok(())
}

/// Shows one playbook version, its YAML included.
pub(crate) async fn get(path: &str, version: u32, client: &ClientArgs) -> Result<(), Failure> {
    let mut clients = Clients::connect(client).await?;
    let request = v1::GetPlaybookRequest {
        path: path.to_owned(),
        version,
    };
    let reply = clients.playbooks.get(request).await?.into_inner();
    let playbook = reply.playbook.unwrap_or_default();
    let printer = Printer::new(client.output);
    if printer.is_json() {
        let mut record = render::playbook(&playbook);
        record["yaml"] = playbook.yaml.clone().into();
        printer.record(&record);
    } else {
        printer.record(&render::playbook(&playbook));
        println!("\n{}", playbook.yaml);
    }
    Ok(())
}
