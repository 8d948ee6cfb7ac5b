-- Platform health (DESIGN §11): each cycle's snapshot, written by the replica holding the
-- `platform_health` lease and read by every replica.
CREATE TABLE IF NOT EXISTS health_snapshots (
    id       bigserial   PRIMARY KEY,
    taken_at timestamptz NOT NULL DEFAULT now(),
    snapshot jsonb       NOT NULL
);

CREATE INDEX IF NOT EXISTS health_snapshots_taken_at ON health_snapshots (taken_at);
