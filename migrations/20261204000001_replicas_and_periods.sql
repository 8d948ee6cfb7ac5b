-- Automatic sharding (DESIGN §9, SHARD_COUNT=auto): each replica registers here and
-- renews its heartbeat; the live ones (a recent heartbeat) divide the virtual shards
-- among themselves by rendezvous hashing, each shard worked only under its lease
-- (`leases`, named `shard:<n>`).
CREATE TABLE IF NOT EXISTS replicas (
    id           text        PRIMARY KEY CHECK (length(id) > 0),
    started_at   timestamptz NOT NULL DEFAULT now(),
    heartbeat_at timestamptz NOT NULL DEFAULT now(),
    version      text        NOT NULL DEFAULT ''
);

-- The timer period a strategy was last evaluated for: a replica that takes a shard over
-- evaluates the current period only for strategies not yet evaluated in it, so a
-- hand-over neither skips a period nor evaluates one twice.
ALTER TABLE strategy_state ADD COLUMN IF NOT EXISTS last_period_at timestamptz NULL;
