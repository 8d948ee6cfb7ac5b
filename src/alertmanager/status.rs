//! `GET /api/v2/status` (Alertmanager 0.25's `alertmanagerStatus`): the cluster is our
//! replicas (their ids, from the heartbeat registry), the version ours, and the
//! configuration a rendering of our alert routing in Alertmanager's terms — receivers
//! by name only: a channel's address or secret is never shown.

use chrono::{DateTime, Utc};
use serde::Serialize;

/// `peerStatus`.
#[derive(Debug, Clone, Serialize)]
pub struct Peer {
    pub name: String,
    pub address: String,
}

/// `clusterStatus`.
#[derive(Debug, Clone, Serialize)]
pub struct ClusterStatus {
    pub name: String,
    /// `ready`: every replica serves the same Postgres.
    pub status: &'static str,
    pub peers: Vec<Peer>,
}

/// `versionInfo`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VersionInfo {
    pub version: String,
    pub revision: String,
    pub branch: String,
    pub build_user: String,
    pub build_date: String,
    /// Required by the schema; we are not built with Go.
    pub go_version: String,
}

/// `alertmanagerConfig`.
#[derive(Debug, Clone, Serialize)]
pub struct AlertmanagerConfig {
    pub original: String,
}

/// `alertmanagerStatus`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AlertmanagerStatus {
    pub cluster: ClusterStatus,
    pub version_info: VersionInfo,
    pub config: AlertmanagerConfig,
    pub uptime: DateTime<Utc>,
}

/// How our routing reads as Alertmanager configuration.
#[derive(Debug, Clone)]
pub struct Routing {
    /// The severities with at least one channel (receivers without one are listed too:
    /// Alertmanager's "null" receivers).
    pub severities_with_channels: Vec<&'static str>,
    pub group_wait: std::time::Duration,
    pub repeat: std::time::Duration,
    pub resolve_timeout: std::time::Duration,
}

/// The configuration as YAML an operator (or `amtool config show`) can read.
pub fn render_config(routing: &Routing) -> String {
    let mut text = format!(
        "# monitoring-service: operational alerts are routed by severity (DESIGN §10).\n\
         # Receivers are named only; their channels live in OPS_ALERT_ROUTES.\n\
         global:\n  resolve_timeout: {}s\n\
         route:\n  receiver: WARNING\n  group_by: []\n  group_wait: {}s\n  repeat_interval: {}s\n  routes:\n",
        routing.resolve_timeout.as_secs(),
        routing.group_wait.as_secs(),
        routing.repeat.as_secs(),
    );
    for severity in ["CRITICAL", "WARNING", "INFO"] {
        text.push_str(&format!(
            "    - receiver: {severity}\n      matchers: ['severity=~\"(?i){}\"']\n",
            severity.to_ascii_lowercase()
        ));
    }
    text.push_str("receivers:\n");
    for severity in ["INFO", "WARNING", "CRITICAL"] {
        let note = if routing.severities_with_channels.contains(&severity) {
            ""
        } else {
            "  # no channel: recorded, not sent"
        };
        text.push_str(&format!("  - name: {severity}{note}\n"));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rendered_config_names_receivers_and_nothing_secret() {
        let text = render_config(&Routing {
            severities_with_channels: vec!["CRITICAL"],
            group_wait: std::time::Duration::from_secs(30),
            repeat: std::time::Duration::from_secs(14_400),
            resolve_timeout: std::time::Duration::from_secs(300),
        });
        assert!(text.contains("resolve_timeout: 300s"), "{text}");
        assert!(text.contains("  - name: CRITICAL\n"), "{text}");
        assert!(text.contains("  - name: INFO  # no channel"), "{text}");
        assert!(text.contains("repeat_interval: 14400s"), "{text}");
    }
}
