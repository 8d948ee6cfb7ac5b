//! Stored candles past `CANDLE_RETENTION_DAYS` are removed by the `candle_retention`
//! monitor; younger ones stay.

use chrono::{Duration, Utc};
use sqlx::PgPool;

use crate::support::{TestApp, test_config};
use monitoring_service::storage::candles::{self, SeriesName, StoredCandle};

#[sqlx::test]
async fn candles_older_than_their_retention_are_removed(pool: PgPool) {
    let series = SeriesName {
        source: "binance".into(),
        symbol: "BTCUSDT".into(),
        interval: "1d".into(),
    };
    let day = |days_ago: i64| StoredCandle {
        open_time: (Utc::now() - Duration::days(days_ago))
            .date_naive()
            .and_hms_opt(0, 0, 0)
            .unwrap()
            .and_utc(),
        open: 1.0,
        high: 1.0,
        low: 1.0,
        close: 1.0,
        volume: 1.0,
    };
    let stored = [day(45), day(31), day(29), day(2)];
    assert_eq!(candles::insert(&pool, &series, &stored).await.unwrap(), 4);
    let config = test_config(false, &[("CANDLE_RETENTION_DAYS", "30")]);
    let app = TestApp::spawn_with(pool.clone(), config).await;
    app.wait_ready().await;
    // Its first scheduled run may still be going (409 `running`): ask until this one runs.
    let run = crate::support::eventually(
        std::time::Duration::from_secs(30),
        "a run of candle_retention",
        || async {
            let (status, run) = app
                .internal(
                    reqwest::Method::POST,
                    "/internal/monitors/candle_retention/run",
                )
                .await;
            assert!(status == 200 || status == 409, "{status} {run}");
            (status == 200).then_some(run)
        },
    )
    .await;
    assert_eq!(run["status"], "ok", "{run}");
    // Its first scheduled run (at start) or this one removed them: two in all.
    let removed: i64 = sqlx::query_scalar(
        "SELECT COALESCE(SUM((details->>'candles_removed')::bigint), 0)::bigint
           FROM monitor_ledger WHERE name = 'candle_retention'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(removed, 2);
    let left = candles::span(&pool, &series, day(400).open_time, Utc::now())
        .await
        .unwrap();
    assert_eq!(left, [day(29), day(2)]);
}
