# The `baton` image: one binary that runs as a broker, a worker or a
# migration, on Debian with the CPython that python tasks run in.
#
#   docker build -t baton:0.1.0 .
#   docker run --rm baton:0.1.0 --help

# --- build ------------------------------------------------------------------
FROM rust:1.95-slim-bookworm AS builder
WORKDIR /build

# Dependencies first, in a layer of their own that is rebuilt only when a
# manifest or the lock file changes. The workspace crates are empty stubs
# here; their artifacts are removed afterwards so the real build below
# compiles them from source whatever the files' timestamps.
COPY Cargo.toml Cargo.lock ./
COPY proto/Cargo.toml proto/
COPY dsl/Cargo.toml dsl/
COPY broker/Cargo.toml broker/
COPY worker/Cargo.toml worker/
COPY cli/Cargo.toml cli/
RUN set -eux; \
    for crate in proto dsl broker worker; do \
        mkdir -p "$crate/src"; touch "$crate/src/lib.rs"; \
    done; \
    mkdir -p cli/src; echo 'fn main() {}' > cli/src/main.rs; \
    echo 'fn main() {}' > proto/build.rs; \
    cargo build --release --locked -p baton; \
    rm -rf proto/build.rs proto/src dsl/src broker/src worker/src cli/src \
        target/release/.fingerprint/baton* target/release/build/baton* \
        target/release/deps/baton* target/release/deps/libbaton* \
        target/release/baton target/release/baton.d

# The sources. Migrations and the python runner are embedded at compile time.
COPY . .
RUN cargo build --release --locked -p baton \
    && install -m 0755 target/release/baton /usr/local/bin/baton

# --- runtime ----------------------------------------------------------------
FROM debian:bookworm-slim

LABEL org.opencontainers.image.title="baton" \
      org.opencontainers.image.description="Baton, a distributed job broker for YAML playbooks" \
      org.opencontainers.image.licenses="Apache-2.0"

# python3 runs `python` tasks; ca-certificates lets http tasks and the
# OTLP exporter verify TLS servers. Nothing else. Versions are not pinned:
# bookworm's security updates replace the pinned ones, and builds would break.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 ca-certificates \
    && rm -rf /var/lib/apt/lists/*

# A fixed, unprivileged identity: the Helm chart runs pods as 10001 too.
RUN groupadd --system --gid 10001 baton \
    && useradd --system --uid 10001 --gid 10001 --create-home \
        --home-dir /home/baton --shell /usr/sbin/nologin baton

COPY --from=builder /usr/local/bin/baton /usr/local/bin/baton

# The root filesystem is read-only under the chart; tasks write to /tmp.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1

USER 10001:10001
WORKDIR /home/baton

# gRPC (the worker protocol, the API, health and reflection), then metrics.
EXPOSE 50051 9090

ENTRYPOINT ["baton"]
CMD ["--help"]
