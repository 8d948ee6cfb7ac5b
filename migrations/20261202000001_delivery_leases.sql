-- Leases (DESIGN §9): one holder per name at a time. The token grows with every new
-- holder, so a write made under a lease can check that its writer still holds it
-- (fencing): a replica that lost its lease (paused, partitioned) can no longer write as
-- its holder. Shard ownership, singleton monitors and deliveries in flight use it.
CREATE SEQUENCE IF NOT EXISTS lease_tokens;

CREATE TABLE IF NOT EXISTS leases (
    name       text        PRIMARY KEY CHECK (length(name) > 0),
    holder     text        NOT NULL CHECK (length(holder) > 0),
    token      bigint      NOT NULL,
    expires_at timestamptz NOT NULL
);

-- A trigger's deliveries run under the lease of the replica delivering them (its name
-- and token at the claim, or at the resume that took them over). A resume takes only
-- triggers whose lease lapsed, whatever their age; every outcome write checks the token.
ALTER TABLE strategy_trigger_logs
    ADD COLUMN IF NOT EXISTS claimed_at  timestamptz NOT NULL DEFAULT now(),
    ADD COLUMN IF NOT EXISTS lease_name  text        NULL,
    ADD COLUMN IF NOT EXISTS lease_token bigint      NULL,
    -- Set (durably) before the first request of a delivery run goes out: a take-over of
    -- a trigger with it set may repeat a request a channel already accepted.
    ADD COLUMN IF NOT EXISTS sending_at  timestamptz NULL;

CREATE INDEX IF NOT EXISTS strategy_trigger_logs_pending_idx
    ON strategy_trigger_logs (id)
    WHERE deliveries @> '[{"status": "pending"}]';
