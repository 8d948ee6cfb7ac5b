//! Email alerts against a real SMTP server (aiosmtpd): a trigger's rendered subject and
//! body arrive, over a plain connection, STARTTLS and SMTPS; a server that cannot
//! upgrade is refused rather than used in clear, and an absent one ends `failed`.

use std::time::Duration;

use monitoring_service::notify::{
    Channel, DeliveryStatus, Notifier, NotifierSettings, OutgoingAlert,
};
use monitoring_service::notify::{SmtpConfig, SmtpTls};
use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

use crate::support::eventually;
use crate::support::smtp_server::{Security, SmtpServer, body, header};
use crate::support::strategies::insert_strategy;
use crate::support::trigger_apps::{app_with, btc_above_one, configure, run};

fn smtp(port: u16, tls: SmtpTls) -> SmtpConfig {
    SmtpConfig {
        host: "127.0.0.1".into(),
        port,
        username: None,
        password: None,
        from: "alerts@monitoring.test".into(),
        tls,
    }
}

fn notifier(server: &SmtpServer, tls: SmtpTls) -> Notifier {
    Notifier::new(NotifierSettings {
        max_attempts: 3,
        min_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(50),
        timeout: Duration::from_secs(5),
        smtp: Some(smtp(server.port, tls)),
        smtp_root_certificate: server.ca_pem.clone(),
        ..NotifierSettings::default()
    })
}

fn to_trader() -> Channel {
    Channel::Email {
        to: "trader@example.com".into(),
    }
}

const TEXT: &str = "BTCUSDT RSI oversold: 28.41\nBTCUSDT (binance 1h): 28.41, threshold 30";

async fn one_message(server: &SmtpServer) -> String {
    eventually(Duration::from_secs(10), "the email to arrive", || async {
        let messages = server.messages();
        (!messages.is_empty()).then(|| {
            assert_eq!(messages.len(), 1, "exactly one email");
            messages[0].clone()
        })
    })
    .await
}

#[tokio::test]
async fn an_email_arrives_over_starttls_and_over_smtps() {
    for (security, tls) in [
        (Security::StartTls, SmtpTls::StartTls),
        (Security::Tls, SmtpTls::Tls),
    ] {
        let server = SmtpServer::start(security);
        let event = json!({});
        let alert = OutgoingAlert {
            dedup_key: "7f0c:bar:1795392000000",
            text: TEXT,
            event: &event,
            owner: None,
            place: None,
        };
        // Without trusting the test CA, the server's certificate is refused.
        let untrusting = Notifier::new(NotifierSettings {
            smtp: Some(smtp(server.port, tls)),
            ..NotifierSettings::default()
        });
        let refused = untrusting.deliver(&to_trader(), &alert).await;
        assert_eq!(
            (refused.status, refused.attempts),
            (DeliveryStatus::Failed, 1),
            "{tls:?} {:?}",
            refused.error
        );
        assert!(server.messages().is_empty());

        let delivery = notifier(&server, tls).deliver(&to_trader(), &alert).await;
        assert_eq!(
            (delivery.status, delivery.attempts, delivery.error),
            (DeliveryStatus::Delivered, 1, None),
            "{tls:?}"
        );
        let message = one_message(&server).await;
        assert_eq!(
            header(&message, "Subject"),
            Some("BTCUSDT RSI oversold: 28.41")
        );
        assert_eq!(header(&message, "To"), Some("trader@example.com"));
        assert_eq!(header(&message, "From"), Some("alerts@monitoring.test"));
        assert_eq!(body(&message), TEXT);
    }
}

#[tokio::test]
async fn a_server_without_starttls_is_refused_and_an_absent_one_fails_after_retries() {
    // STARTTLS is required: a server that does not offer it is not used in clear.
    let plain = SmtpServer::start(Security::Plain);
    let event = json!({});
    let alert = OutgoingAlert {
        dedup_key: "k",
        text: TEXT,
        event: &event,
        owner: None,
        place: None,
    };
    let delivery = notifier(&plain, SmtpTls::StartTls)
        .deliver(&to_trader(), &alert)
        .await;
    assert_eq!(delivery.status, DeliveryStatus::Failed);
    assert_eq!(delivery.attempts, 1, "a refused upgrade is not retried");
    assert!(plain.messages().is_empty());

    // Nobody listening: a network error, retried up to the bound, then failed.
    let port = plain.port;
    drop(plain);
    let gone = Notifier::new(NotifierSettings {
        max_attempts: 3,
        min_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(50),
        smtp: Some(smtp(port, SmtpTls::None)),
        ..NotifierSettings::default()
    });
    let delivery = gone.deliver(&to_trader(), &alert).await;
    assert_eq!(
        (delivery.status, delivery.attempts),
        (DeliveryStatus::Failed, 3)
    );
    assert!(delivery.error.unwrap().starts_with("SMTP: "));

    // No SMTP configured at all: failed with the reason, no attempt.
    let unconfigured = Notifier::new(NotifierSettings::default());
    let delivery = unconfigured.deliver(&to_trader(), &alert).await;
    assert_eq!(
        (
            delivery.status,
            delivery.attempts,
            delivery.error.as_deref()
        ),
        (
            DeliveryStatus::Failed,
            0,
            Some("SMTP_HOST is not configured")
        )
    );
}

#[sqlx::test]
async fn a_trigger_sends_its_rendered_subject_and_body_by_email(pool: PgPool) {
    let sim = market_sim::start(market_sim::SimConfig::default())
        .await
        .unwrap();
    let server = SmtpServer::start(Security::Plain);
    let port = server.port.to_string();
    let (id, _) = insert_strategy(&pool, Uuid::new_v4(), &[btc_above_one()], None).await;
    configure(
        &pool,
        id,
        "every_time",
        json!([{"type": "email", "to": "trader@example.com"}]),
        Some("{{ strategy_name }}: {{ symbol }} above 1\nNow {{ value }} at {{ triggered_at }}"),
    )
    .await;
    let app = app_with(
        pool.clone(),
        &sim,
        &[
            ("SMTP_HOST", "127.0.0.1"),
            ("SMTP_PORT", &port),
            ("SMTP_FROM", "alerts@monitoring.test"),
            ("SMTP_TLS", "none"),
        ],
    )
    .await;
    let report = run(&app).await;
    assert_eq!(report["triggered"], 1, "{report}");

    let message = one_message(&server).await;
    assert_eq!(
        header(&message, "Subject"),
        Some("BTC strength: BTCUSDT above 1")
    );
    let (logged, deliveries): (String, Value) = sqlx::query_as(
        "SELECT message, deliveries FROM strategy_trigger_logs WHERE strategy_id = $1",
    )
    .bind(id)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(body(&message), logged, "the body is the rendered message");
    assert!(logged.contains("\nNow "), "{logged}");
    assert_eq!(
        crate::support::without_fingerprints(deliveries),
        json!([{"channel": "email", "status": "delivered", "attempts": 1, "error": null}])
    );
}
