//! `n` strategies of three conditions each (a price alert, RSI 1h, an EMA cross 4h)
//! over 50 symbols and 5,000 users, all `1m` — the population the loader and reload
//! benchmarks measure.
#![allow(dead_code)]

use sqlx::PgPool;

pub const SEED: &str = r#"
INSERT INTO strategies (id, user_id, name, logic_tree, frequency, trigger_mode, cooldown_seconds, channels)
SELECT md5('s' || i)::uuid, md5('u' || (i % 5000))::uuid, 'strategy ' || i,
       jsonb_build_object('and', jsonb_build_array(
           jsonb_build_object('condition', md5('c0-' || i)::uuid),
           jsonb_build_object('or', jsonb_build_array(
               jsonb_build_object('condition', md5('c1-' || i)::uuid),
               jsonb_build_object('condition', md5('c2-' || i)::uuid))))),
       '1m', 'every_time', 300, '[{"type": "telegram", "chat_id": "123456"}]'
FROM generate_series(1, $1) AS i;

INSERT INTO strategy_conditions (id, strategy_id, kind, params)
SELECT md5('c' || k || '-' || i)::uuid, md5('s' || i)::uuid,
       CASE WHEN k = 0 THEN 'price_alert' ELSE 'technical_indicator' END,
       CASE k
         WHEN 0 THEN jsonb_build_object('source', 'binance', 'symbol', 'SYM' || (i % 50) || 'USDT',
                                        'operator', 'above', 'value', 100 + i % 7)
         WHEN 1 THEN jsonb_build_object('source', 'binance', 'symbol', 'SYM' || (i % 50) || 'USDT',
                                        'interval', '1h', 'indicator', 'rsi', 'period', 14,
                                        'operator', 'below', 'value', 30)
         ELSE jsonb_build_object('source', 'binance', 'symbol', 'SYM' || (i % 50) || 'USDT',
                                 'interval', '4h', 'indicator', 'ema', 'period', 20,
                                 'operator', 'crosses_above',
                                 'compare_to', jsonb_build_object('indicator', 'ema', 'period', 50))
       END
FROM generate_series(1, $1) AS i, generate_series(0, 2) AS k;
"#;

/// Inserts the strategies and analyzes the tables.
pub async fn seed_strategies(pool: &PgPool, n: i64) {
    for statement in SEED.split(";\n").filter(|s| !s.trim().is_empty()) {
        sqlx::query(statement).bind(n).execute(pool).await.unwrap();
    }
    sqlx::query("VACUUM ANALYZE").execute(pool).await.unwrap();
}
