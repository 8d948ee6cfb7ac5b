-- The tables of DESIGN.md §3. synapse-api owns strategy CRUD; this service reads
-- strategies and conditions, and writes status/error, runtime state, trigger logs and
-- the ledger. Constraints reject rows that can never be valid; everything that needs
-- the condition registry (kinds, params, frequencies, cron) is validated by the service,
-- which records a precise message in strategies.error.

CREATE TABLE IF NOT EXISTS strategies (
    id               uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id          uuid        NOT NULL,
    name             text        NOT NULL CHECK (length(btrim(name)) > 0),
    status           text        NOT NULL DEFAULT 'active'
                     CHECK (status IN ('active', 'paused', 'error', 'expired', 'completed')),
    logic_tree       jsonb       NOT NULL CHECK (jsonb_typeof(logic_tree) = 'object'),
    frequency        text        NOT NULL DEFAULT '1m' CHECK (length(btrim(frequency)) > 0),
    trigger_mode     text        NOT NULL DEFAULT 'every_time'
                     CHECK (trigger_mode IN ('every_time', 'once', 'once_per_bar',
                                             'once_per_bar_close', 'on_rising_edge')),
    cooldown_seconds integer     NOT NULL DEFAULT 300 CHECK (cooldown_seconds >= 0),
    channels         jsonb       NOT NULL DEFAULT '[]'::jsonb
                     CHECK (jsonb_typeof(channels) = 'array'),
    message_template text        NULL,
    expires_at       timestamptz NULL,
    error            text        NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    -- Only a strategy in status `error` carries an error message.
    CONSTRAINT strategies_error_only_in_error_status
        CHECK (error IS NULL OR status = 'error')
);

-- The loader reads active strategies (and, on a targeted reload, any status by id).
CREATE INDEX IF NOT EXISTS strategies_status_updated_at_idx
    ON strategies (status, updated_at);
CREATE INDEX IF NOT EXISTS strategies_user_id_idx ON strategies (user_id);

CREATE TABLE IF NOT EXISTS strategy_conditions (
    id          uuid  PRIMARY KEY DEFAULT gen_random_uuid(),
    strategy_id uuid  NOT NULL REFERENCES strategies (id) ON DELETE CASCADE,
    kind        text  NOT NULL CHECK (length(btrim(kind)) > 0),
    params      jsonb NOT NULL CHECK (jsonb_typeof(params) = 'object')
);

CREATE INDEX IF NOT EXISTS strategy_conditions_strategy_id_idx
    ON strategy_conditions (strategy_id);

CREATE TABLE IF NOT EXISTS strategy_trigger_logs (
    id           bigserial   PRIMARY KEY,
    -- Deleting a strategy in synapse-api must not fail on its history.
    strategy_id  uuid        NOT NULL REFERENCES strategies (id) ON DELETE CASCADE,
    triggered_at timestamptz NOT NULL DEFAULT now(),
    -- strategy + bar or time bucket: the claim that makes delivery exactly-once.
    dedup_key    text        NOT NULL UNIQUE CHECK (length(dedup_key) > 0),
    snapshot     jsonb       NOT NULL DEFAULT '{}'::jsonb
                 CHECK (jsonb_typeof(snapshot) = 'object'),
    message      text        NULL,
    deliveries   jsonb       NOT NULL DEFAULT '[]'::jsonb
                 CHECK (jsonb_typeof(deliveries) = 'array')
);

CREATE INDEX IF NOT EXISTS strategy_trigger_logs_strategy_triggered_idx
    ON strategy_trigger_logs (strategy_id, triggered_at DESC);

CREATE TABLE IF NOT EXISTS strategy_state (
    strategy_id           uuid        PRIMARY KEY REFERENCES strategies (id) ON DELETE CASCADE,
    last_evaluated_at     timestamptz NULL,
    -- true / false / NULL for unknown
    last_result           boolean     NULL,
    last_triggered_at     timestamptz NULL,
    last_candle_open_time timestamptz NULL,
    -- values crosses and edges compare against, keyed by condition id
    previous_values       jsonb       NOT NULL DEFAULT '{}'::jsonb
                          CHECK (jsonb_typeof(previous_values) = 'object'),
    consecutive_errors    integer     NOT NULL DEFAULT 0 CHECK (consecutive_errors >= 0),
    trigger_count         bigint      NOT NULL DEFAULT 0 CHECK (trigger_count >= 0),
    updated_at            timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS monitor_ledger (
    id          bigserial        PRIMARY KEY,
    name        text             NOT NULL CHECK (length(name) > 0),
    started_at  timestamptz      NOT NULL,
    duration_ms double precision NOT NULL CHECK (duration_ms >= 0),
    evaluated   integer          NOT NULL DEFAULT 0 CHECK (evaluated >= 0),
    triggered   integer          NOT NULL DEFAULT 0 CHECK (triggered >= 0),
    errors      integer          NOT NULL DEFAULT 0 CHECK (errors >= 0),
    skipped     integer          NOT NULL DEFAULT 0 CHECK (skipped >= 0),
    status      text             NOT NULL CHECK (status IN ('ok', 'partial', 'failed', 'skipped')),
    details     jsonb            NOT NULL DEFAULT '{}'::jsonb
);

CREATE INDEX IF NOT EXISTS monitor_ledger_name_started_idx
    ON monitor_ledger (name, started_at DESC);
