//! `monitoring-service backtest` against the real binary: a stored strategy and an
//! edit of it from a file, as a table of fires, the counts and the edit's preview.

use serde_json::json;
use sqlx::PgPool;
use uuid::Uuid;

use super::{app_on, rfc3339, scripted_sim};
use crate::support::cli_runner::run;
use crate::support::strategies::insert_strategy;

const MINUTE: i64 = 60_000;

#[sqlx::test]
async fn the_cli_shows_the_fires_the_counts_and_what_an_edit_changes(pool: PgPool) {
    let start = crate::support::market::hour(90);
    let sim = scripted_sim(
        start + 80 * MINUTE + 30_000,
        "BTCUSDT",
        start,
        MINUTE,
        vec![110.0; 100],
    )
    .await;
    let above =
        json!({"source": "binance", "symbol": "BTCUSDT", "operator": "above", "value": 100});
    let (id, conditions) = insert_strategy(
        &pool,
        Uuid::new_v4(),
        &[("price_alert", above.clone())],
        None,
    )
    .await;
    sqlx::query(
        "UPDATE strategies SET trigger_mode = 'every_time', cooldown_seconds = 300 WHERE id = $1",
    )
    .bind(id)
    .execute(&pool)
    .await
    .unwrap();
    let app = app_on(pool, &sim, &[]).await;
    // The edit: the same condition, a 10-minute cooldown.
    let draft = json!({"frequency": "1m", "trigger_mode": "every_time", "cooldown_seconds": 600,
                       "logic_tree": {"condition": conditions[0]},
                       "conditions": [{"id": conditions[0], "kind": "price_alert", "params": above}]});
    let file = std::env::temp_dir().join(format!("backtest-draft-{id}.json"));
    std::fs::write(&file, draft.to_string()).unwrap();
    let (from, to) = (rfc3339(start + 10 * MINUTE), rfc3339(start + 70 * MINUTE));
    let args = [
        "backtest",
        &id.to_string(),
        "--strategy-file",
        file.to_str().unwrap(),
        "--from",
        &from,
        "--to",
        &to,
    ];

    let shown = run(&app, &args).await;
    assert_eq!(shown.code, 0, "{shown:?}");
    let rows: Vec<&str> = shown
        .stdout
        .lines()
        .filter(|l| l.starts_with("20"))
        .collect();
    assert_eq!(
        rows.len(),
        6,
        "one row a fire, every 600 s: {}",
        shown.stdout
    );
    assert!(rows[0].contains("✓ 110 vs 100"), "{}", rows[0]);
    assert!(
        shown.stdout.contains("6 fires in 60 moments"),
        "{}",
        shown.stdout
    );
    assert!(
        shown
            .stdout
            .contains("suppressed: already_triggered 0, cooldown 54"),
        "{}",
        shown.stdout
    );
    assert!(
        shown.stdout.contains("the edit adds: none"),
        "{}",
        shown.stdout
    );

    let mut json_args = args.to_vec();
    json_args.push("--json");
    let report = run(&app, &json_args).await.json();
    assert_eq!(report["fires_total"], 6);
    let removed = report["compare"]["removed"].as_array().unwrap();
    let expected: Vec<String> = (0..6)
        .map(|k| rfc3339(start + (15 + 10 * k) * MINUTE))
        .collect();
    assert_eq!(
        removed
            .iter()
            .map(|t| t.as_str().unwrap().to_owned())
            .collect::<Vec<_>>(),
        expected
    );
    std::fs::remove_file(file).unwrap();
}
