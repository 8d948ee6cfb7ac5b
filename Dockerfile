# syntax=docker/dockerfile:1
# Multi-stage build: dependencies compile in their own cached layer, the runtime image
# is a small Debian with a non-root user. Not built in this repository's CI (no Docker
# engine there); kept simple enough to check by reading.

ARG RUST_VERSION=1.95
FROM rust:${RUST_VERSION}-slim-bookworm AS build
WORKDIR /src
RUN apt-get update && apt-get install -y --no-install-recommends cmake pkg-config \
    && rm -rf /var/lib/apt/lists/*

# 1. Dependencies only: this layer is reused until Cargo.toml or Cargo.lock change.
COPY Cargo.toml Cargo.lock ./
RUN mkdir -p src tests/it benches \
    && echo 'fn main() {}' > src/main.rs \
    && touch src/lib.rs tests/it/main.rs \
    && cargo build --release --locked --bin monitoring-service \
    && rm -rf src tests

# 2. The service itself (migrations are embedded at compile time).
COPY src ./src
COPY migrations ./migrations
RUN touch src/main.rs src/lib.rs \
    && cargo build --release --locked --bin monitoring-service

FROM debian:bookworm-slim AS runtime
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --no-create-home monitoring
COPY --from=build /src/target/release/monitoring-service /usr/local/bin/monitoring-service
USER 10001
ENV MONITORING_HOST=0.0.0.0 \
    MONITORING_PORT=9000 \
    LOG_FORMAT=json
EXPOSE 9000
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD curl -fsS http://127.0.0.1:9000/health || exit 1
ENTRYPOINT ["/usr/local/bin/monitoring-service"]
CMD ["serve"]
