# shellcheck shell=bash
# Throwaway PostgreSQL and Redis for the test and run commands. Sourced, not run.
#
#   services_start <dir>   installs what is missing (apt-get, as root), starts both on
#                          free loopback ports with their data under <dir>, and exports
#                          SERVICES_POSTGRES_URL, SERVICES_POSTGRES_ADMIN_URL and
#                          SERVICES_REDIS_URL (empty when Redis is unavailable and
#                          REQUIRE_REDIS is not set).
#   services_stop          stops both and removes <dir>. Safe to call twice.
#   test_services_start <dir>
#                          services_start with Redis required, plus what the tests
#                          need (the SMTP server's Python, Prometheus and promtool,
#                          amtool), and exports the
#                          variables the tests read (DATABASE_URL, TEST_*).

set -euo pipefail

log() { printf '[services] %s\n' "$*" >&2; }

apt_install() {
  if [ "$(id -u)" -ne 0 ]; then
    log "missing $* and not root: install them (apt-get install $*) and retry"
    return 1
  fi
  if [ -z "${SERVICES_APT_UPDATED:-}" ]; then
    log "apt-get update"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
    SERVICES_APT_UPDATED=1
  fi
  log "apt-get install $*"
  # Package scripts may try to start system services; there is no init system here,
  # and we start our own instances anyway.
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

pg_bindir() {
  local dir
  dir=$(find /usr/lib/postgresql -mindepth 2 -maxdepth 2 -type d -name bin 2>/dev/null | sort -V | tail -n 1)
  [ -n "$dir" ] && [ -x "$dir/initdb" ] && echo "$dir"
}

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

free_port() {
  local port=$1
  while port_in_use "$port"; do port=$((port + 1)); done
  echo "$port"
}

# Runs a command as the unprivileged postgres user when we are root (initdb and
# postgres refuse to run as root).
as_pg_user() {
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u "$SERVICES_PG_USER" -- "$@"
  else
    "$@"
  fi
}

services_start() {
  SERVICES_DIR=$1
  rm -rf "$SERVICES_DIR"
  mkdir -p "$SERVICES_DIR"

  local bindir
  if ! bindir=$(pg_bindir); then
    apt_install postgresql
    bindir=$(pg_bindir) || { log "PostgreSQL binaries not found after install"; return 1; }
  fi
  if ! command -v redis-server >/dev/null 2>&1; then
    apt_install redis-server redis-tools || [ -z "${REQUIRE_REDIS:-}" ]
  fi

  # --- PostgreSQL ---
  SERVICES_PG_USER=postgres
  if [ "$(id -u)" -eq 0 ]; then
    id -u "$SERVICES_PG_USER" >/dev/null 2>&1 || useradd --system --no-create-home "$SERVICES_PG_USER"
    # The data directory may sit below a root-owned checkout: let the postgres user
    # reach it (search permission only on the parents).
    local parent=$SERVICES_DIR
    while [ "$parent" != "/" ]; do chmod o+x "$parent" 2>/dev/null || true; parent=$(dirname "$parent"); done
  fi
  SERVICES_PGDATA="$SERVICES_DIR/postgres"
  mkdir -p "$SERVICES_PGDATA"
  [ "$(id -u)" -eq 0 ] && chown -R "$SERVICES_PG_USER" "$SERVICES_PGDATA"
  local pg_port
  pg_port=$(free_port "${SERVICES_PG_PORT:-55432}")
  log "PostgreSQL ($bindir) on 127.0.0.1:$pg_port"
  as_pg_user "$bindir/initdb" -D "$SERVICES_PGDATA" -U monitoring --auth=trust \
    --encoding=UTF8 --no-sync >"$SERVICES_DIR/initdb.log" 2>&1 \
    || { cat "$SERVICES_DIR/initdb.log" >&2; return 1; }
  # Durability is irrelevant for throwaway data; speed matters.
  as_pg_user "$bindir/pg_ctl" -D "$SERVICES_PGDATA" -l "$SERVICES_PGDATA/server.log" -w -t 60 \
    -o "-p $pg_port -c listen_addresses=127.0.0.1 -c unix_socket_directories='' \
        -c fsync=off -c synchronous_commit=off -c full_page_writes=off \
        -c max_connections=500 -c shared_buffers=256MB" start >/dev/null \
    || { cat "$SERVICES_PGDATA/server.log" >&2; return 1; }
  SERVICES_PG_BINDIR=$bindir
  "$bindir/createdb" -h 127.0.0.1 -p "$pg_port" -U monitoring monitoring
  export SERVICES_POSTGRES_ADMIN_URL="postgres://monitoring@127.0.0.1:$pg_port/postgres"
  export SERVICES_POSTGRES_URL="postgres://monitoring@127.0.0.1:$pg_port/monitoring"

  # --- Redis ---
  export SERVICES_REDIS_URL=""
  if command -v redis-server >/dev/null 2>&1; then
    local redis_port
    redis_port=$(free_port "${SERVICES_REDIS_PORT:-56379}")
    mkdir -p "$SERVICES_DIR/redis"
    redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no \
      --daemonize yes --dir "$SERVICES_DIR/redis" \
      --pidfile "$SERVICES_DIR/redis/redis.pid" --logfile "$SERVICES_DIR/redis/redis.log"
    local tries=0
    until port_in_use "$redis_port"; do
      tries=$((tries + 1))
      [ "$tries" -gt 100 ] && { log "Redis did not start"; cat "$SERVICES_DIR/redis/redis.log" >&2; return 1; }
      sleep 0.1
    done
    SERVICES_REDIS_PORT_USED=$redis_port
    export SERVICES_REDIS_URL="redis://127.0.0.1:$redis_port"
    log "Redis on 127.0.0.1:$redis_port"
  elif [ -n "${REQUIRE_REDIS:-}" ]; then
    log "Redis is required but redis-server is not available"
    return 1
  else
    log "redis-server not available: running without Redis (in-process caches)"
  fi
}

services_stop() {
  if [ -n "${SERVICES_PGDATA:-}" ] && [ -f "$SERVICES_PGDATA/postmaster.pid" ]; then
    as_pg_user "$SERVICES_PG_BINDIR/pg_ctl" -D "$SERVICES_PGDATA" -m immediate -w stop >/dev/null 2>&1 || true
  fi
  if [ -n "${SERVICES_DIR:-}" ] && [ -f "$SERVICES_DIR/redis/redis.pid" ]; then
    kill "$(cat "$SERVICES_DIR/redis/redis.pid")" 2>/dev/null || true
  fi
  if [ -n "${SERVICES_DIR:-}" ]; then
    rm -rf "$SERVICES_DIR"
  fi
  SERVICES_PGDATA=""
  SERVICES_DIR=""
}

test_services_start() {
  REQUIRE_REDIS=1 services_start "$1"
  # sqlx::test creates one database per test through DATABASE_URL.
  export DATABASE_URL=$SERVICES_POSTGRES_URL
  export TEST_POSTGRES_URL=$SERVICES_POSTGRES_URL
  export TEST_PG_BINDIR=$SERVICES_PG_BINDIR
  export TEST_REDIS_URL=$SERVICES_REDIS_URL
  # The email tests talk to a real SMTP server: aiosmtpd, run by Debian's Python.
  if ! /usr/bin/python3 -c 'import aiosmtpd' 2>/dev/null; then
    apt_install python3-aiosmtpd
  fi
  export TEST_SMTP_PYTHON=/usr/bin/python3
  # The metrics tests check a scrape with promtool, from Debian's prometheus package.
  # The Alertmanager API tests run a real Prometheus (same package) and amtool (from
  # Debian's prometheus-alertmanager, 0.25).
  if ! command -v promtool >/dev/null 2>&1 || ! command -v prometheus >/dev/null 2>&1; then
    apt_install prometheus
  fi
  if ! command -v amtool >/dev/null 2>&1; then
    apt_install prometheus-alertmanager
  fi
}

# serve_until_ready <binary> <log>: starts `<binary> serve` in the background (its
# environment says where: MONITORING_HOST/PORT), logging to <log>, sets SERVICE_PID and
# a trap that stops it on exit, and waits up to 20 s for /ready to answer 200.
serve_until_ready() {
  "$1" serve 2>"$2" &
  SERVICE_PID=$!
  trap 'kill "$SERVICE_PID" 2>/dev/null || true' EXIT
  local ready="http://${MONITORING_HOST:-127.0.0.1}:${MONITORING_PORT:-9000}/ready"
  for _ in $(seq 1 200); do
    curl -fsS "$ready" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  log "the service did not become ready; its log:"
  tail -n 30 "$2" >&2
  return 1
}
