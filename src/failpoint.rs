//! Test-only fail points: named places where a debug build, told so at startup
//! (`MONITORING_FAIL_POINT=<name>`), stops and waits forever — so a fault test can kill
//! the process there with a real signal. Release builds never arm one.
//!
//! Points: `after_claim` (triggers claimed and committed, nothing sent yet) and
//! `after_accept` (a channel accepted an alert, its outcome not yet written),
//! `ops_alert_after_claim` (an operational alert message claimed, not yet sent),
//! `analysis_after_claim` (candle closes claimed for analysis, no call made).

use std::sync::OnceLock;

static ARMED: OnceLock<String> = OnceLock::new();

/// Arms the fail point `name` for the life of the process (debug builds only).
pub fn arm(name: &str) {
    if cfg!(debug_assertions) && !name.is_empty() {
        let _ = ARMED.set(name.to_owned());
    }
}

/// At fail point `name`: when it is armed, logs that it was reached and never returns.
pub async fn reached(name: &str) {
    if ARMED.get().is_some_and(|armed| armed == name) {
        tracing::warn!(point = name, "fail point reached; waiting to be killed");
        std::future::pending::<()>().await;
    }
}
