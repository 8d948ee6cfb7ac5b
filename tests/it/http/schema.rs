//! The migrations: every table and column of DESIGN.md §3, and constraints that refuse
//! rows that can never be valid.

use sqlx::PgPool;

async fn columns(pool: &PgPool, table: &str) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT column_name::text FROM information_schema.columns
         WHERE table_schema = 'public' AND table_name = $1 ORDER BY ordinal_position",
    )
    .bind(table)
    .fetch_all(pool)
    .await
    .unwrap()
}

#[sqlx::test]
async fn tables_have_the_fixed_columns(pool: PgPool) {
    let expected: &[(&str, &[&str])] = &[
        (
            "strategies",
            &[
                "id",
                "user_id",
                "name",
                "status",
                "logic_tree",
                "frequency",
                "trigger_mode",
                "cooldown_seconds",
                "channels",
                "message_template",
                "expires_at",
                "error",
                "created_at",
                "updated_at",
            ],
        ),
        (
            "strategy_conditions",
            &["id", "strategy_id", "kind", "params"],
        ),
        (
            "strategy_trigger_logs",
            &[
                "id",
                "strategy_id",
                "triggered_at",
                "dedup_key",
                "snapshot",
                "message",
                "deliveries",
            ],
        ),
    ];
    for (table, wanted) in expected {
        let actual = columns(&pool, table).await;
        for column in *wanted {
            assert!(
                actual.iter().any(|c| c == column),
                "{table}.{column}: {actual:?}"
            );
        }
    }
    for table in ["strategy_state", "monitor_ledger"] {
        assert!(!columns(&pool, table).await.is_empty(), "{table} exists");
    }
}

#[sqlx::test]
async fn migrations_apply_twice(pool: PgPool) {
    // sqlx::test applied them once already.
    monitoring_service::storage::postgres::migrate(&pool)
        .await
        .unwrap();
    monitoring_service::storage::postgres::migrate(&pool)
        .await
        .unwrap();
}

async fn insert_strategy(pool: &PgPool, overrides: &str) -> Result<(), sqlx::Error> {
    // `overrides` replaces the default value list, column by column.
    let sql = format!(
        "INSERT INTO strategies (user_id, name, status, logic_tree, cooldown_seconds, channels)
         SELECT gen_random_uuid(), name, status, logic_tree::jsonb, cooldown, channels::jsonb
         FROM (VALUES {overrides}) AS v(name, status, logic_tree, cooldown, channels)"
    );
    // The value lists are literals written in this file.
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .execute(pool)
        .await
        .map(|_| ())
}

#[sqlx::test]
async fn impossible_strategies_are_refused(pool: PgPool) {
    let ok = r#"('s', 'active', '{"condition": "x"}', 300, '[]')"#;
    insert_strategy(&pool, ok).await.unwrap();

    for bad in [
        r#"('s', 'bogus', '{"condition": "x"}', 300, '[]')"#,
        r#"('s', 'active', '{"condition": "x"}', -1, '[]')"#,
        r#"('', 'active', '{"condition": "x"}', 300, '[]')"#,
        r#"('s', 'active', '[1, 2]', 300, '[]')"#,
        r#"('s', 'active', '{"condition": "x"}', 300, '{"type": "telegram"}')"#,
    ] {
        let err = insert_strategy(&pool, bad).await.unwrap_err();
        let code = err.as_database_error().and_then(|e| e.code()).unwrap();
        assert_eq!(code, "23514", "check violation for {bad}");
    }

    let err = sqlx::query(
        "INSERT INTO strategies (user_id, name, logic_tree, error)
         VALUES (gen_random_uuid(), 's', '{}', 'only for status error')",
    )
    .execute(&pool)
    .await
    .unwrap_err();
    assert_eq!(err.as_database_error().unwrap().code().unwrap(), "23514");
}

#[sqlx::test]
async fn a_dedup_key_can_be_claimed_once(pool: PgPool) {
    let id: uuid::Uuid = sqlx::query_scalar(
        "INSERT INTO strategies (user_id, name, logic_tree)
         VALUES (gen_random_uuid(), 's', '{}') RETURNING id",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    let claim = || {
        sqlx::query(
            "INSERT INTO strategy_trigger_logs (strategy_id, dedup_key) VALUES ($1, 'k1')
             ON CONFLICT (dedup_key) DO NOTHING",
        )
        .bind(id)
        .execute(&pool)
    };
    assert_eq!(claim().await.unwrap().rows_affected(), 1);
    assert_eq!(claim().await.unwrap().rows_affected(), 0);

    // Deleting the strategy (synapse-api owns that) takes its history with it.
    sqlx::query("DELETE FROM strategies WHERE id = $1")
        .bind(id)
        .execute(&pool)
        .await
        .unwrap();
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM strategy_trigger_logs")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(left, 0);
}
