//! `GET /internal/strategies/{id}`: definition, loaded version, status, error and
//! runtime state — and never a channel's address or secret.

use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

use crate::support::strategies::{insert_strategy, price_above};
use crate::support::{TestApp, test_config};

async fn get(app: &TestApp, id: &str) -> (u16, Value) {
    let path = format!("/internal/strategies/{id}");
    app.internal(reqwest::Method::GET, &path).await
}

#[sqlx::test]
async fn a_strategy_shows_its_definition_status_and_state_without_secrets(pool: PgPool) {
    let (id, conditions) = insert_strategy(&pool, Uuid::new_v4(), &[price_above(5.0)], None).await;
    sqlx::query("UPDATE strategies SET channels = $2 WHERE id = $1")
        .bind(id)
        .bind(
            json!([{"type": "webhook", "url": "https://hooks.example.com/T0KEN-IN-PATH",
                      "secret": "whsec-do-not-show"},
                     {"type": "telegram", "chat_id": "123456"}]),
        )
        .execute(&pool)
        .await
        .unwrap();
    let (broken, _) = insert_strategy(
        &pool,
        Uuid::new_v4(),
        &[price_above(5.0)],
        Some(json!({"nand": []})),
    )
    .await;
    // No Redis: this app follows announcements on its own database only, so no other
    // test's announcement reloads it behind the test's back.
    let app = TestApp::spawn_with(pool.clone(), test_config(false, &[])).await;
    app.wait_ready().await;

    let (status, view) = get(&app, &id.to_string()).await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(view["status"], "active");
    assert_eq!(view["loaded"], true);
    assert_eq!(view["loaded_version"], view["version"]);
    assert_eq!(view["channels"], json!(["webhook", "telegram"]));
    assert_eq!(view["conditions"][0]["id"], json!(conditions[0]));
    assert_eq!(view["conditions"][0]["params"]["value"], 5.0);
    assert_eq!(view["state"], Value::Null, "never evaluated");
    let text = view.to_string();
    for secret in [
        "T0KEN-IN-PATH",
        "whsec-do-not-show",
        "hooks.example.com",
        "123456",
    ] {
        assert!(!text.contains(secret), "{secret} leaked: {text}");
    }

    sqlx::query(
        "INSERT INTO strategy_state (strategy_id, last_result, trigger_count, consecutive_errors)
         VALUES ($1, true, 3, 0)",
    )
    .bind(id)
    .execute(&pool)
    .await
    .unwrap();
    let (_, view) = get(&app, &id.to_string()).await;
    assert_eq!(
        (
            view["state"]["last_result"].clone(),
            view["state"]["trigger_count"].clone()
        ),
        (json!(true), json!(3))
    );

    let (status, view) = get(&app, &broken.to_string()).await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(
        (view["status"].clone(), view["loaded"].clone()),
        (json!("error"), json!(false))
    );
    assert!(
        view["error"].as_str().unwrap().starts_with("logic_tree"),
        "{view}"
    );

    let (status, answer) = get(&app, &Uuid::new_v4().to_string()).await;
    assert_eq!((status, answer["error"].clone()), (404, json!("not_found")));
    for malformed in ["not-a-uuid", "1234", "%00"] {
        let (status, answer) = get(&app, malformed).await;
        assert_eq!(status, 400, "{malformed}: {answer}");
        assert!(answer["message"].is_string(), "{answer}");
    }
    app.stop().await.unwrap();
}
