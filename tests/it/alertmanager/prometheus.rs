//! A real Prometheus (Debian's `prometheus`) sending its alerts to the service as it
//! would to Alertmanager: `alerting.alertmanagers` pointed at us with `path_prefix`
//! and `authorization`. Its rule fires (`vector(1)`); the alert appears among our
//! active alerts, reaches its severity route once however often Prometheus re-sends
//! it, and resolves when the rule is removed (Prometheus stops re-sending and the
//! `endsAt` it sent passes). Two Prometheus replicas posting to two of our replicas
//! are one episode and one message.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

use crate::support::process::{Service, quiet_vars};
use crate::support::recorder::Recorder;
use crate::support::{ScratchDatabase, TEST_KEY, eventually, redis_url};

const RULES: &str = "groups:
  - name: test
    interval: 1s
    rules:
      - alert: AlwaysFiring
        expr: vector(1)
        labels:
          severity: critical
        annotations:
          summary: always firing
          description: vector(1) is always 1
";
const NO_RULES: &str = "groups: []\n";

/// A Prometheus server, killed when dropped.
struct Prometheus {
    child: Child,
    rules: std::path::PathBuf,
    dir: std::path::PathBuf,
}

impl Prometheus {
    /// Evaluates [`RULES`] every second and re-sends firing alerts every second to the
    /// service at `target` (`host:port`).
    fn start(target: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("prometheus-{}", Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let rules = dir.join("rules.yml");
        std::fs::write(&rules, RULES).unwrap();
        let config = format!(
            "global:
  evaluation_interval: 1s
rule_files: [{rules}]
alerting:
  alertmanagers:
    - api_version: v2
      path_prefix: /
      authorization:
        credentials: {TEST_KEY}
      static_configs:
        - targets: ['{target}']
",
            rules = rules.display()
        );
        std::fs::write(dir.join("prometheus.yml"), config).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let log = std::fs::File::create(dir.join("prometheus.log")).unwrap();
        let child = Command::new("prometheus")
            .arg(format!(
                "--config.file={}",
                dir.join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--rules.alert.resend-delay=1s")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("prometheus runs (Debian's package; scripts/services.sh installs it)");
        Self { child, rules, dir }
    }

    /// Removes the rule and reloads the configuration with SIGHUP.
    fn remove_rule(&self) {
        std::fs::write(&self.rules, NO_RULES).unwrap();
        let sent = Command::new("kill")
            .args(["-HUP", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success());
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("prometheus.log")).unwrap_or_default()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        std::fs::remove_dir_all(&self.dir).ok();
    }
}

/// A replica whose CRITICAL route is a Slack stand-in at `address`.
fn replica(database: &str, address: std::net::SocketAddr) -> Vec<(&'static str, String)> {
    let mut vars = quiet_vars(database, &redis_url());
    let routes = json!({"CRITICAL": [{"type": "slack",
                                      "webhook_url": format!("http://{address}/critical")}]});
    vars.push(("OPS_ALERT_ROUTES", routes.to_string()));
    vars.push(("OPS_ALERT_GROUP_WAIT_SECONDS", "1".to_owned()));
    vars
}

fn target(service: &Service) -> String {
    service.url("").trim_start_matches("http://").to_owned()
}

fn log_file() -> std::path::PathBuf {
    std::env::temp_dir().join(format!("monitoring-prometheus-{}.log", Uuid::new_v4()))
}

/// The episodes of `AlwaysFiring`: `(state, seconds between start and last sight)`.
async fn episodes(pool: &PgPool) -> Vec<(String, f64)> {
    sqlx::query_as(
        "SELECT state, extract(epoch FROM last_seen_at - started_at)::float8
           FROM ops_alerts WHERE rule = 'AlwaysFiring' ORDER BY started_at",
    )
    .fetch_all(pool)
    .await
    .unwrap()
}

async fn raised_events(pool: &PgPool) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT e.event FROM ops_alert_events e JOIN ops_alerts a USING (alert_id)
          WHERE a.rule = 'AlwaysFiring' ORDER BY e.id",
    )
    .fetch_all(pool)
    .await
    .unwrap()
}

fn slack_texts(recorder: &Recorder) -> Vec<String> {
    recorder
        .received("/critical")
        .iter()
        .map(|r| r.body["text"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// Runs `prometheus_count` Prometheus servers, the n-th posting to the n-th of as many
/// replicas, through firing (re-sent many times) and the rule's removal.
async fn fire_and_remove(replicas: usize) {
    let (database, pool) = ScratchDatabase::migrated().await;
    let (recorder, address) = Recorder::start().await;
    let services: Vec<Service> = (0..replicas)
        .map(|_| Service::start(&replica(&database.url, address), &log_file()))
        .collect();
    for service in &services {
        service.wait_ready().await;
    }
    let prometheus: Vec<Prometheus> = services
        .iter()
        .map(|service| Prometheus::start(&target(service)))
        .collect();

    let active = eventually(
        Duration::from_secs(60),
        "the alert among the active ones",
        || {
            let client = reqwest::Client::new();
            let url = services[0].url("/internal/alerts/active");
            async move {
                let body: Value = client
                    .get(url)
                    .header("X-MONITORING-KEY", TEST_KEY)
                    .send()
                    .await
                    .ok()?
                    .json()
                    .await
                    .ok()?;
                (body["count"] == 1).then_some(body)
            }
        },
    )
    .await;
    let alert = &active["alerts"][0];
    assert_eq!(alert["rule"], "AlwaysFiring");
    assert_eq!(alert["level"], "CRITICAL");
    assert_eq!(alert["title"], "always firing");
    assert_eq!(
        alert["labels"],
        json!({"alertname": "AlwaysFiring", "severity": "critical"})
    );

    // Re-sent every second: seen again for at least 5 s, still one episode, one
    // raised event, and one message on the route.
    eventually(
        Duration::from_secs(60),
        "five seconds of re-sends",
        || async {
            let episodes = episodes(&pool).await;
            (episodes.len() == 1 && episodes[0].1 >= 5.0).then_some(())
        },
    )
    .await;
    let texts = eventually(Duration::from_secs(30), "the firing message", || async {
        let texts = slack_texts(&recorder);
        (!texts.is_empty()).then_some(texts)
    })
    .await;
    assert_eq!(episodes(&pool).await.len(), 1);
    assert_eq!(raised_events(&pool).await, ["raised"]);
    assert_eq!(
        texts.len(),
        1,
        "one message, not one per re-send: {texts:?}"
    );
    assert!(texts[0].contains("always firing"), "{}", texts[0]);

    // The rule is removed: no more re-sends; by the endsAt Prometheus sent (4 × 1 s
    // after its last evaluation) the episode resolves, and one resolved message goes.
    for server in &prometheus {
        server.remove_rule();
    }
    eventually(Duration::from_secs(60), "the alert to resolve", || async {
        (episodes(&pool)
            .await
            .iter()
            .all(|(state, _)| state == "resolved"))
        .then_some(())
    })
    .await;
    let texts = eventually(Duration::from_secs(30), "the resolved message", || async {
        let texts = slack_texts(&recorder);
        (texts.len() >= 2).then_some(texts)
    })
    .await;
    assert_eq!(texts.len(), 2, "{texts:?}");
    assert!(texts[1].contains("resolved"), "{}", texts[1]);
    assert_eq!(raised_events(&pool).await, ["raised", "resolved"]);
    for server in &prometheus {
        assert!(!server.log().contains("level=error"), "{}", server.log());
    }
}

#[tokio::test]
async fn a_prometheus_rule_fires_once_on_the_route_and_resolves_when_removed() {
    fire_and_remove(1).await;
}

#[tokio::test]
async fn two_prometheus_replicas_on_two_of_ours_are_one_episode_and_one_message() {
    fire_and_remove(2).await;
}
