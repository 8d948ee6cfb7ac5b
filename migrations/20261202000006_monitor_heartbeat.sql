-- Monitors (DESIGN §13): each periodic job's heartbeat and its live settings. An
-- UPDATE of interval_seconds, enabled or snoozed_until takes effect at the monitor's
-- next cycle on every replica.
CREATE TABLE IF NOT EXISTS monitor_heartbeat (
    monitor_name     text        PRIMARY KEY CHECK (length(monitor_name) BETWEEN 1 AND 200),
    last_run         timestamptz,
    last_status      text        CHECK (last_status IN ('ok', 'partial', 'failed', 'skipped')),
    -- NULL for monitors whose cadence is not an interval (strategy buckets follow their
    -- frequency, analysis the candle closes).
    interval_seconds integer     CHECK (interval_seconds BETWEEN 1 AND 86400),
    enabled          boolean     NOT NULL DEFAULT true,
    snoozed_until    timestamptz,
    updated_at       timestamptz NOT NULL DEFAULT now()
);
