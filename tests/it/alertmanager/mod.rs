//! The Alertmanager API (DESIGN §18) against the real server, Postgres and Redis, and
//! against the real clients: amtool and Prometheus from Debian's packages, which the
//! test command installs.

mod amtool;
mod api;
mod prometheus;
mod resends;

use serde_json::Value;
use sqlx::PgPool;

use crate::support::{TEST_KEY, TestApp};

/// `method /api/v2<path>` with the key as a bearer token: the status and the body
/// (JSON, or `null` when empty).
pub async fn am(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    am_at(&app.client, &app.url("/api/v2"), method, path, body).await
}

/// As [`am`], against the service at `base` (`http://…/api/v2`).
pub async fn am_at(
    client: &reqwest::Client,
    base: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = client
        .request(method, format!("{base}{path}"))
        .bearer_auth(TEST_KEY);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("JSON body, got {text}"))
    };
    (status, body)
}

/// The states of `rule`'s episodes, oldest first, and their events in order.
pub async fn episodes(pool: &PgPool, rule: &str) -> (Vec<String>, Vec<String>) {
    let states: Vec<String> =
        sqlx::query_scalar("SELECT state FROM ops_alerts WHERE rule = $1 ORDER BY started_at")
            .bind(rule)
            .fetch_all(pool)
            .await
            .unwrap();
    let events: Vec<String> = sqlx::query_scalar(
        "SELECT e.event FROM ops_alert_events e JOIN ops_alerts a USING (alert_id)
          WHERE a.rule = $1 ORDER BY e.id",
    )
    .bind(rule)
    .fetch_all(pool)
    .await
    .unwrap();
    (states, events)
}
