-- Candle-close analysis (DESIGN §14): the schedules synapse-api writes, one per
-- monitored signal, and one decision row per (schedule, candle) — the claim that makes
-- each close analysed at most once across replicas and restarts.

CREATE TABLE IF NOT EXISTS workflow_schedules (
    id                 uuid PRIMARY KEY,
    workflow_type      text NOT NULL DEFAULT 'signal_monitoring',
    entity_id          uuid NOT NULL,
    trader_id          uuid NOT NULL,
    interval           text NOT NULL,
    symbol             text NOT NULL,
    last_run_at        timestamptz,
    last_candle_time   bigint,
    consecutive_errors integer NOT NULL DEFAULT 0,
    is_active          boolean NOT NULL DEFAULT true,
    status             text NOT NULL DEFAULT 'monitoring'
                       CHECK (status IN ('monitoring', 'in_position', 'expired', 'error')),
    reanalysis_count   integer NOT NULL DEFAULT 0,
    max_reanalyses     integer NOT NULL DEFAULT 5 CHECK (max_reanalyses >= 1),
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now()
);

-- "Active schedules on (symbol, interval)": what each close looks up.
CREATE INDEX IF NOT EXISTS workflow_schedules_active_series
    ON workflow_schedules (symbol, interval)
    WHERE is_active AND status = 'monitoring';

CREATE TABLE IF NOT EXISTS monitoring_decisions (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    schedule_id      uuid NOT NULL REFERENCES workflow_schedules (id) ON DELETE CASCADE,
    entity_id        uuid NOT NULL,
    trader_id        uuid NOT NULL,
    candle_open_time bigint NOT NULL,
    -- pending: claimed, being analysed; failed: the call failed (reasoning says why);
    -- skipped: not started before the series closed again.
    decision         text NOT NULL
                     CHECK (decision IN ('pending', 'enter', 'abandon', 'continue', 'failed', 'skipped')),
    confidence       double precision,
    reasoning        text,
    response         jsonb,
    latency_ms       double precision,
    claimed_at       timestamptz NOT NULL DEFAULT now(),
    claimed_by       text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (schedule_id, candle_open_time)
);

-- Claims to resume after a crash.
CREATE INDEX IF NOT EXISTS monitoring_decisions_pending
    ON monitoring_decisions (claimed_at) WHERE decision = 'pending';
