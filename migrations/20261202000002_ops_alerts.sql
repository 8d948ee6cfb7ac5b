-- Operational alerts (DESIGN §10): one row per episode of a rule holding for a set of
-- labels, and the silences operators set over them.

CREATE TABLE IF NOT EXISTS ops_alerts (
    alert_id        text        PRIMARY KEY,
    -- A digest of the rule and its sorted labels: what makes two raises one alert.
    fingerprint     text        NOT NULL,
    rule            text        NOT NULL,
    severity        text        NOT NULL CHECK (severity IN ('INFO', 'WARNING', 'CRITICAL')),
    title           text        NOT NULL,
    message         text        NOT NULL,
    component       text        NOT NULL,
    labels          jsonb       NOT NULL DEFAULT '{}'::jsonb,
    context         jsonb       NOT NULL DEFAULT '{}'::jsonb,
    state           text        NOT NULL CHECK (state IN ('firing', 'resolved', 'cleared')),
    started_at      timestamptz NOT NULL DEFAULT now(),
    last_seen_at    timestamptz NOT NULL DEFAULT now(),
    resolved_at     timestamptz,
    acknowledged    boolean     NOT NULL DEFAULT false,
    acknowledged_at timestamptz,
    acknowledged_by text,
    silenced        boolean     NOT NULL DEFAULT false,
    -- A cleared episode is re-armed once its rule has been seen not holding; until then
    -- a raise of the same fingerprint only touches it.
    rearmed         boolean     NOT NULL DEFAULT false
);

-- At most one open episode per fingerprint, across replicas.
CREATE UNIQUE INDEX IF NOT EXISTS ops_alerts_open_episode
    ON ops_alerts (fingerprint)
    WHERE state = 'firing' OR (state = 'cleared' AND NOT rearmed);

-- History, newest first, with keyset pagination on (started_at, alert_id).
CREATE INDEX IF NOT EXISTS ops_alerts_history_idx
    ON ops_alerts (started_at DESC, alert_id DESC);

CREATE TABLE IF NOT EXISTS ops_silences (
    id          uuid        PRIMARY KEY,
    -- [{"name": "rule" | "severity" | "component" | <label>, "value": "…", "is_regex": bool}]
    matchers    jsonb       NOT NULL CHECK (jsonb_typeof(matchers) = 'array'),
    starts_at   timestamptz NOT NULL,
    ends_at     timestamptz NOT NULL CHECK (ends_at > starts_at),
    created_by  text        NOT NULL DEFAULT '',
    comment     text        NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL DEFAULT now()
);
