//! The trigger handler: claims the trigger (a `strategy_trigger_logs` row by its unique
//! `dedup_key`, in one transaction with the strategy's trigger state, so two replicas or
//! a retry after a crash can never both deliver), renders the message, delivers to
//! every channel concurrently and records each delivery's status, attempts and error.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use sqlx::PgPool;

use super::message::{AlertFacts, render};
use crate::metrics::Metrics;
use crate::notify::{Delivery, DeliveryStatus, Notifier, OutgoingAlert, parse_channels};
use crate::strategy::{CompiledStrategy, StrategyIndex, TriggerMode};

/// A trigger log with pending deliveries: id, strategy, dedup key, message, snapshot,
/// deliveries.
type PendingRow = (
    i64,
    uuid::Uuid,
    String,
    Option<String>,
    sqlx::types::Json<Value>,
    sqlx::types::Json<Vec<Delivery>>,
);

/// A claimed and delivered trigger.
#[derive(Debug, Clone, PartialEq)]
pub struct TriggerLogged {
    pub log_id: i64,
    pub deliveries: Vec<Delivery>,
}

/// Claims, renders and delivers triggers.
#[derive(Debug, Clone)]
pub struct TriggerHandler {
    db: PgPool,
    notifier: Notifier,
    metrics: Arc<Metrics>,
}

impl TriggerHandler {
    pub fn new(db: PgPool, notifier: Notifier, metrics: Arc<Metrics>) -> Self {
        Self {
            db,
            notifier,
            metrics,
        }
    }

    /// Handles one trigger. `Ok(None)`: another replica (or an earlier attempt)
    /// already claimed `dedup_key`.
    pub async fn handle(
        &self,
        strategy: &CompiledStrategy,
        dedup_key: &str,
        facts: &AlertFacts,
    ) -> Result<Option<TriggerLogged>, sqlx::Error> {
        let rendered = render(strategy.message_template.as_deref(), facts);
        if let Some(error) = &rendered.template_error {
            tracing::warn!(strategy_id = %strategy.id, %error, "message template failed; sent the default message");
        }
        let channels = parse_channels(&strategy.channels).unwrap_or_default();
        let pending: Vec<Delivery> = channels
            .iter()
            .map(|c| Delivery {
                channel: c.kind().to_owned(),
                status: DeliveryStatus::Pending,
                attempts: 0,
                error: None,
            })
            .collect();
        // Sanitized: conditions and values only — no channels, URLs or secrets.
        let snapshot = json!({
            "strategy_id": strategy.id,
            "strategy_name": &*strategy.name,
            "triggered_at": facts.triggered_at,
            "conditions": facts.conditions,
            "template_error": rendered.template_error,
        });
        let Some(log_id) = self
            .claim(
                strategy,
                dedup_key,
                facts.triggered_at,
                &snapshot,
                &rendered.text,
                &pending,
            )
            .await?
        else {
            return Ok(None);
        };
        tracing::info!(strategy_id = %strategy.id, dedup_key, "trigger claimed; delivering");
        let event = json!({
            "event": "strategy.triggered",
            "dedup_key": dedup_key,
            "strategy_id": strategy.id,
            "strategy_name": &*strategy.name,
            "triggered_at": facts.triggered_at,
            "message": rendered.text,
            "conditions": facts.conditions,
        });
        let alert = OutgoingAlert {
            dedup_key,
            text: &rendered.text,
            event: &event,
        };
        let deliveries = futures_util::future::join_all(
            channels.iter().map(|c| self.notifier.deliver(c, &alert)),
        )
        .await;
        for delivery in &deliveries {
            let status = match delivery.status {
                DeliveryStatus::Delivered => "delivered",
                DeliveryStatus::Failed => "failed",
                DeliveryStatus::Pending => "pending",
            };
            self.metrics
                .scheduler
                .deliveries
                .with_label_values(&[&delivery.channel, status])
                .inc();
            if delivery.status == DeliveryStatus::Failed {
                tracing::warn!(strategy_id = %strategy.id, channel = %delivery.channel,
                    attempts = delivery.attempts, error = ?delivery.error, "delivery failed");
            }
        }
        sqlx::query("UPDATE strategy_trigger_logs SET deliveries = $2 WHERE id = $1")
            .bind(log_id)
            .bind(sqlx::types::Json(&deliveries))
            .execute(&self.db)
            .await?;
        Ok(Some(TriggerLogged { log_id, deliveries }))
    }

    /// Delivers what a crash left `pending`: trigger logs older than `grace` (longer
    /// than any delivery takes, so nothing in flight is touched) and younger than a
    /// day. Each row is locked while it is resumed (`FOR UPDATE SKIP LOCKED`), so two
    /// replicas never resume the same one. Channels are matched by position and kind
    /// against the strategy as loaded now. Answers how many deliveries were made.
    pub async fn resume_pending(
        &self,
        index: &StrategyIndex,
        grace: Duration,
    ) -> Result<usize, sqlx::Error> {
        let grace_ms = i64::try_from(grace.as_millis()).unwrap_or(i64::MAX);
        let mut resumed = 0;
        loop {
            let mut tx = self.db.begin().await?;
            let row: Option<PendingRow> =
                sqlx::query_as(
                    "SELECT id, strategy_id, dedup_key, message, snapshot, deliveries
                       FROM strategy_trigger_logs
                      WHERE deliveries @> '[{\"status\": \"pending\"}]'
                        AND triggered_at < now() - make_interval(secs => $1::double precision / 1000)
                        AND triggered_at > now() - interval '1 day'
                      ORDER BY id
                      LIMIT 1
                        FOR UPDATE SKIP LOCKED",
                )
                .bind(grace_ms as f64)
                .fetch_optional(&mut *tx)
                .await?;
            let Some((id, strategy_id, dedup_key, message, snapshot, deliveries)) = row else {
                return Ok(resumed);
            };
            let mut deliveries = deliveries.0;
            let channels = index
                .get(strategy_id)
                .map(|s| parse_channels(&s.channels).unwrap_or_default())
                .unwrap_or_default();
            let text = message.unwrap_or_default();
            let event = json!({
                "event": "strategy.triggered",
                "dedup_key": &dedup_key,
                "strategy_id": strategy_id,
                "strategy_name": snapshot.0.get("strategy_name"),
                "triggered_at": snapshot.0.get("triggered_at"),
                "message": &text,
                "conditions": snapshot.0.get("conditions"),
            });
            let alert = OutgoingAlert {
                dedup_key: &dedup_key,
                text: &text,
                event: &event,
            };
            for (i, delivery) in deliveries.iter_mut().enumerate() {
                if delivery.status != DeliveryStatus::Pending {
                    continue;
                }
                *delivery = match channels.get(i).filter(|c| c.kind() == delivery.channel) {
                    Some(channel) => {
                        resumed += 1;
                        self.notifier.deliver(channel, &alert).await
                    }
                    None => Delivery {
                        channel: delivery.channel.clone(),
                        status: DeliveryStatus::Failed,
                        attempts: delivery.attempts,
                        error: Some("the channel no longer exists on an active strategy".into()),
                    },
                };
            }
            sqlx::query("UPDATE strategy_trigger_logs SET deliveries = $2 WHERE id = $1")
                .bind(id)
                .bind(sqlx::types::Json(&deliveries))
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            tracing::info!(strategy_id = %strategy_id, dedup_key, "resumed pending deliveries");
        }
    }

    /// Inserts the log row unless the key is taken, and records the trigger in the
    /// strategy's state (and completes a `once` strategy) in the same transaction.
    async fn claim(
        &self,
        strategy: &CompiledStrategy,
        dedup_key: &str,
        at: DateTime<Utc>,
        snapshot: &Value,
        message: &str,
        pending: &[Delivery],
    ) -> Result<Option<i64>, sqlx::Error> {
        let mut tx = self.db.begin().await?;
        let claimed: Option<i64> = sqlx::query_scalar(
            "INSERT INTO strategy_trigger_logs (strategy_id, triggered_at, dedup_key, snapshot, message, deliveries)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (dedup_key) DO NOTHING
             RETURNING id",
        )
        .bind(strategy.id)
        .bind(at)
        .bind(dedup_key)
        .bind(sqlx::types::Json(snapshot))
        .bind(message)
        .bind(sqlx::types::Json(pending))
        .fetch_optional(&mut *tx)
        .await?;
        let Some(id) = claimed else {
            return Ok(None);
        };
        sqlx::query(
            "INSERT INTO strategy_state (strategy_id, last_triggered_at, trigger_count)
             VALUES ($1, $2, 1)
             ON CONFLICT (strategy_id) DO UPDATE SET
                 last_triggered_at = EXCLUDED.last_triggered_at,
                 trigger_count = strategy_state.trigger_count + 1,
                 updated_at = now()",
        )
        .bind(strategy.id)
        .bind(at)
        .execute(&mut *tx)
        .await?;
        if strategy.trigger_mode == TriggerMode::Once {
            sqlx::query(
                "UPDATE strategies SET status = 'completed' WHERE id = $1 AND status = 'active'",
            )
            .bind(strategy.id)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(Some(id))
    }
}
