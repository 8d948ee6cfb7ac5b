-- Trading-engine ticks and the operational rules over them (DESIGN §12).

-- Every tick, as received (the engine's own timestamp, and when we received it).
CREATE TABLE IF NOT EXISTS engine_metrics (
    id          bigserial   PRIMARY KEY,
    engine_id   text        NOT NULL,
    recorded_at timestamptz NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    metrics     jsonb       NOT NULL
);

CREATE INDEX IF NOT EXISTS engine_metrics_engine_time
    ON engine_metrics (engine_id, recorded_at);
CREATE INDEX IF NOT EXISTS engine_metrics_received_at ON engine_metrics (received_at);

-- Each engine's latest tick and the rules holding for it, shared by every replica:
-- any replica can take any tick. `last_received_at` is NULL for an expected engine
-- that never ticked.
CREATE TABLE IF NOT EXISTS engine_state (
    engine_id        text        PRIMARY KEY,
    last_recorded_at timestamptz,
    last_received_at timestamptz,
    last_metrics     jsonb,
    -- {"<rule>": "<severity>"} for every rule holding now.
    holding          jsonb       NOT NULL DEFAULT '{}'::jsonb,
    updated_at       timestamptz NOT NULL DEFAULT now()
);

-- Per-rule (and optionally per-engine) thresholds overriding the defaults: the highest
-- level crossed wins (low → INFO, medium → WARNING, high → CRITICAL).
CREATE TABLE IF NOT EXISTS alert_thresholds (
    id         bigserial        PRIMARY KEY,
    rule       text             NOT NULL,
    engine_id  text,
    low        double precision,
    medium     double precision,
    high       double precision,
    enabled    boolean          NOT NULL DEFAULT true,
    updated_at timestamptz      NOT NULL DEFAULT now()
);

CREATE UNIQUE INDEX IF NOT EXISTS alert_thresholds_rule_engine
    ON alert_thresholds (rule, COALESCE(engine_id, ''));
