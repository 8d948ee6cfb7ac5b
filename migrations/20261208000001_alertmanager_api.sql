-- The Alertmanager API (DESIGN §18): alerts posted by Prometheus and amtool become
-- ops_alerts episodes that keep their annotations and generator URL, and resolve by
-- themselves when they are not re-sent by `ends_at`. Silences made through either API
-- are one table; an expired silence stays listed (state `expired`) until the retention.

ALTER TABLE ops_alerts
    ADD COLUMN IF NOT EXISTS annotations   jsonb NOT NULL DEFAULT '{}'::jsonb,
    ADD COLUMN IF NOT EXISTS generator_url text  NOT NULL DEFAULT '',
    -- A posted alert's end: it resolves when not re-sent by then (null for our own).
    ADD COLUMN IF NOT EXISTS ends_at       timestamptz;

-- The expiry sweep: open posted episodes by their end.
CREATE INDEX IF NOT EXISTS ops_alerts_ends_at_idx
    ON ops_alerts (ends_at)
    WHERE ends_at IS NOT NULL AND (state = 'firing' OR (state = 'cleared' AND NOT rearmed));

ALTER TABLE ops_silences
    ADD COLUMN IF NOT EXISTS updated_at timestamptz NOT NULL DEFAULT now();
