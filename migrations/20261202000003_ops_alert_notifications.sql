-- Operational alerts' notifications and event stream (DESIGN §10).

-- When the episode's last firing notification was claimed (NULL: never), and whether
-- its resolved message has been claimed.
ALTER TABLE ops_alerts
    ADD COLUMN IF NOT EXISTS notified_at       timestamptz,
    ADD COLUMN IF NOT EXISTS resolved_notified boolean NOT NULL DEFAULT false;

-- One message to a severity's route: claimed by one replica (until `claimed_until`),
-- then marked sent. A claim that lapses unsent (its replica died) is taken over.
CREATE TABLE IF NOT EXISTS ops_alert_notifications (
    id            bigserial   PRIMARY KEY,
    severity      text        NOT NULL CHECK (severity IN ('INFO', 'WARNING', 'CRITICAL')),
    kind          text        NOT NULL CHECK (kind IN ('firing', 'resolved')),
    alert_ids     text[]      NOT NULL,
    claimed_until timestamptz NOT NULL,
    attempts      integer     NOT NULL DEFAULT 1,
    sent_at       timestamptz,
    outcome       text,
    created_at    timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX IF NOT EXISTS ops_alert_notifications_unsent
    ON ops_alert_notifications (claimed_until) WHERE sent_at IS NULL;

-- Every alert event, in order: what a reconnecting stream client missed
-- (`Last-Event-ID` is `id`).
CREATE TABLE IF NOT EXISTS ops_alert_events (
    id          bigserial   PRIMARY KEY,
    alert_id    text        NOT NULL,
    event       text        NOT NULL,
    line        jsonb       NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX IF NOT EXISTS ops_alert_events_recorded_at ON ops_alert_events (recorded_at);
