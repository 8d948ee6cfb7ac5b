# syntax=docker/dockerfile:1
# Multi-stage build: dependencies compile in their own cached layer, the runtime image
# is a small Debian with a non-root user. CI has no Docker engine: the test command
# replays the build stage's COPY set and cargo commands in a scratch folder
# (scripts/check_image.py), so a file missing from the build context fails CI.

ARG RUST_VERSION=1.95
FROM rust:${RUST_VERSION}-slim-bookworm AS build
WORKDIR /src
RUN apt-get update && apt-get install -y --no-install-recommends cmake pkg-config \
    && rm -rf /var/lib/apt/lists/*

# 1. Dependencies only: the workspace's manifests (the service and the market-sim member
#    it names as a dev-dependency) with a stand-in for every target they declare, so
#    this layer is reused until a manifest or Cargo.lock changes.
COPY Cargo.toml Cargo.lock ./
COPY market-sim/Cargo.toml ./market-sim/
COPY scripts/stub_targets.sh ./scripts/
RUN sh scripts/stub_targets.sh \
    && cargo build --release --locked --bin monitoring-service \
    && rm -rf src

# 2. The service itself (migrations are embedded at compile time); the stand-ins of the
#    other targets stay, as the manifests still declare them.
COPY src ./src
COPY migrations ./migrations
RUN touch src/main.rs src/lib.rs \
    && cargo build --release --locked --bin monitoring-service

FROM debian:bookworm-slim AS runtime
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 monitoring \
    && useradd --system --uid 10001 --gid 10001 --no-create-home monitoring \
    && mkdir -p /var/lib/monitoring/alerts /var/lib/monitoring/metrics \
    && chown -R 10001:10001 /var/lib/monitoring
COPY --from=build /src/target/release/monitoring-service /usr/local/bin/monitoring-service
# The only paths the service writes: mounted as volumes where the root filesystem is
# read-only (deploy/k8s).
WORKDIR /var/lib/monitoring
USER 10001:10001
ENV MONITORING_HOST=0.0.0.0 \
    MONITORING_PORT=9000 \
    LOG_FORMAT=json \
    ALERT_LOG_DIR=/var/lib/monitoring/alerts \
    METRICS_SNAPSHOT_DIR=/var/lib/monitoring/metrics
EXPOSE 9000
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD curl -fsS http://127.0.0.1:9000/health || exit 1
ENTRYPOINT ["/usr/local/bin/monitoring-service"]
CMD ["serve"]
