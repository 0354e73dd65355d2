//! Baton's gRPC contract, `baton.v1`, compiled with tonic.
//!
//! The `.proto` files under `proto/baton/v1/` are the source of truth; their
//! comments document every RPC's status codes and every field's unit. This
//! crate only compiles them and adds the conversions between protobuf's
//! well-known types and the JSON values the rest of Baton works with.

pub mod convert;

/// The generated messages, clients and servers of the `baton.v1` package.
#[allow(missing_docs, unreachable_pub, clippy::all, clippy::pedantic)]
pub mod v1 {
    tonic::include_proto!("baton.v1");
}

/// The encoded `FileDescriptorSet` of `baton.v1`, served by reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("baton_descriptor");
