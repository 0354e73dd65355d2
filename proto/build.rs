//! Compiles `baton/v1/*.proto` with tonic and writes the descriptor set that
//! the reflection service serves.

use std::path::PathBuf;

const PROTOS: &[&str] = &[
    "baton/v1/types.proto",
    "baton/v1/broker.proto",
    "baton/v1/playbooks.proto",
    "baton/v1/executions.proto",
    "baton/v1/jobs.proto",
    "baton/v1/policies.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // A vendored protoc keeps the build free of system packages.
    let mut config = tonic_prost_build::Config::new();
    config.protoc_executable(protoc_bin_vendored::protoc_bin_path()?);

    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    tonic_prost_build::configure()
        .file_descriptor_set_path(out.join("baton_descriptor.bin"))
        .compile_with_config(config, PROTOS, &["."])?;

    for proto in PROTOS {
        println!("cargo:rerun-if-changed={proto}");
    }
    Ok(())
}
