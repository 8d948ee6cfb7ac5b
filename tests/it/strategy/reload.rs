//! `POST /internal/reload-strategies`: all, or only the ids named, with per-strategy
//! validation errors; bad bodies answered with a JSON 400.

use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

use crate::support::strategies::{insert_strategy, price_above};
use crate::support::{TEST_KEY, TestApp, test_config};

async fn reload(app: &TestApp, body: Option<&str>) -> (u16, Value) {
    let mut request = app
        .client
        .post(app.url("/internal/reload-strategies"))
        .header("X-MONITORING-KEY", TEST_KEY);
    if let Some(body) = body {
        request = request
            .header("content-type", "application/json")
            .body(body.to_owned());
    }
    let response = request.send().await.unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

async fn rename(pool: &PgPool, id: Uuid, name: &str) {
    sqlx::query("UPDATE strategies SET name = $2, updated_at = now() WHERE id = $1")
        .bind(id)
        .bind(name)
        .execute(pool)
        .await
        .unwrap();
}

#[sqlx::test]
async fn a_reload_takes_all_or_only_the_named_strategies(pool: PgPool) {
    let (a, _) = insert_strategy(&pool, Uuid::new_v4(), &[price_above(1.0)], None).await;
    let (b, _) = insert_strategy(&pool, Uuid::new_v4(), &[price_above(2.0)], None).await;
    // No Redis: this app follows announcements on its own database only, so no other
    // test's announcement reloads it behind the test's back.
    let app = TestApp::spawn_with(pool.clone(), test_config(false, &[])).await;
    app.wait_ready().await;
    let name = |id| app.state.index.get(id).map(|s| s.name.to_string());

    // Both change; reloading only `a` takes only `a`.
    rename(&pool, a, "a v2").await;
    rename(&pool, b, "b v2").await;
    let (status, report) = reload(&app, Some(&json!({"strategy_ids": [a]}).to_string())).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(
        (report["reloaded"].clone(), report["loaded"].clone()),
        (json!(1), json!(2))
    );
    assert_eq!(name(a).as_deref(), Some("a v2"));
    assert_eq!(name(b).as_deref(), Some("test strategy"));

    // No body: everything.
    let (status, report) = reload(&app, None).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["reloaded"], 1, "only b changed since: {report}");
    assert_eq!(name(b).as_deref(), Some("b v2"));

    // A strategy broken in the database is reported with its error, and a deleted one
    // leaves the index.
    sqlx::query(
        "UPDATE strategies SET logic_tree = '{\"nand\": []}', updated_at = now() WHERE id = $1",
    )
    .bind(a)
    .execute(&pool)
    .await
    .unwrap();
    sqlx::query("DELETE FROM strategies WHERE id = $1")
        .bind(b)
        .execute(&pool)
        .await
        .unwrap();
    let (status, report) =
        reload(&app, Some(&json!({"strategy_ids": [a, b, a]}).to_string())).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["removed"], 1, "{report}");
    assert_eq!(report["errors"][0]["strategy_id"], json!(a), "{report}");
    assert!(
        report["errors"][0]["error"]
            .as_str()
            .unwrap()
            .starts_with("logic_tree"),
        "{report}"
    );
    assert!(name(a).is_none() && name(b).is_none());

    // An unknown id changes nothing.
    let (status, report) = reload(
        &app,
        Some(&json!({"strategy_ids": [Uuid::new_v4()]}).to_string()),
    )
    .await;
    assert_eq!(
        (
            status,
            report["reloaded"].clone(),
            report["removed"].clone()
        ),
        (200, json!(0), json!(0))
    );
    app.stop().await.unwrap();
}

#[sqlx::test]
async fn bad_reload_bodies_get_a_json_400(pool: PgPool) {
    // No Redis: this app follows announcements on its own database only, so no other
    // test's announcement reloads it behind the test's back.
    let app = TestApp::spawn_with(pool, test_config(false, &[])).await;
    app.wait_ready().await;
    let too_many = json!({"strategy_ids": vec![Uuid::nil(); 10_001]}).to_string();
    for body in [
        "{",
        "[]",
        r#"{"strategy_ids": "all"}"#,
        r#"{"strategy_ids": ["not-a-uuid"]}"#,
        r#"{"strategy_ids": [1, 2]}"#,
        r#"{"ids": []}"#,
        too_many.as_str(),
    ] {
        let (status, answer) = reload(&app, Some(body)).await;
        assert_eq!(status, 400, "{body:.60}: {answer}");
        assert!(
            answer["error"].is_string() && answer["message"].is_string(),
            "{answer}"
        );
    }
    // An empty object is "all".
    let (status, _) = reload(&app, Some("{}")).await;
    assert_eq!(status, 200);
    app.stop().await.unwrap();
}
