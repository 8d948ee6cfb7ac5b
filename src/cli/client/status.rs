//! `status`: the active alerts first (what needs a human), then the service's summary —
//! version, uptime, shard, dependencies, strategies, each batch and each market-data
//! source.

use chrono::Utc;
use serde_json::{Value, json};

use super::alerts::{alerts_of, table as alert_table};
use super::output::{Output, Table, age, cell, format_number, milliseconds};
use super::{Api, ClientError};

/// Prints the active alerts and the service summary.
pub async fn status(api: &Api, out: &Output) -> Result<u8, ClientError> {
    let active = api.get("/internal/alerts/active").await?;
    let status = api.get("/internal/status").await?;
    if out.json {
        out.print_json(&json!({"alerts": active, "status": status}));
        return Ok(0);
    }
    let alerts = alerts_of(&active)?;
    out.heading(&format!("ACTIVE ALERTS ({})", alerts.len()));
    if alerts.is_empty() {
        println!("none");
    } else {
        alert_table(&alerts).print(out);
    }
    println!();
    summary(out, &status);
    Ok(0)
}

fn summary(out: &Output, status: &Value) {
    let now = Utc::now();
    out.heading("SERVICE");
    let uptime = status["uptime_seconds"]
        .as_i64()
        .map_or("-".to_owned(), super::output::span);
    let shard = &status["shard"];
    let share = if shard["mode"] == "auto" {
        format!(
            "shards auto: {} of {} held, {} replicas live",
            shard["held"].as_array().map_or(0, Vec::len),
            cell(&shard["virtual_shards"]),
            shard["live_replicas"]
                .as_array()
                .map_or("?".to_owned(), |live| live.len().to_string()),
        )
    } else {
        format!("shard {}/{}", cell(&shard["index"]), cell(&shard["count"]))
    };
    println!(
        "{} {}, up {uptime}, {share}",
        cell(&status["service"]),
        cell(&status["version"]),
    );
    let postgres = &status["postgres"];
    println!(
        "postgres {}/{} connections ({} idle), redis {}, live reload via {} ({})",
        cell(&postgres["connections"]),
        cell(&postgres["max_connections"]),
        cell(&postgres["idle"]),
        out.paint(
            &cell(&status["redis"]),
            super::Tone::of(&cell(&status["redis"]))
        ),
        cell(&status["live_reload"]["via"]),
        if status["live_reload"]["following"] == true {
            "following"
        } else {
            "not following"
        },
    );
    let strategies = &status["strategies"];
    let by_status = strategies["by_status"]
        .as_object()
        .map(|map| {
            map.iter()
                .map(|(k, v)| format!("{k}={}", cell(v)))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .filter(|text| !text.is_empty())
        .unwrap_or_else(|| "-".to_owned());
    println!(
        "strategies {} loaded, {} in error, generation {}, stored by status: {by_status}",
        cell(&strategies["loaded"]),
        cell(&strategies["errors"]),
        cell(&strategies["generation"]),
    );
    if let Some(rate) = status["cache"]["hit_rate"].as_f64() {
        println!(
            "market-data cache hit rate {}%",
            format_number(rate * 100.0)
        );
    }
    println!();

    out.heading("BATCHES");
    let mut batches = Table::new(&[
        "FREQUENCY",
        "STRATEGIES",
        "NEXT RUN",
        "LAST RUN",
        "STATUS",
        "EVALUATED",
        "TRIGGERED",
        "DURATION",
    ]);
    for bucket in status["buckets"].as_array().into_iter().flatten() {
        let last = &bucket["last_run"];
        batches.row(&[
            cell(&bucket["frequency"]),
            cell(&bucket["strategies"]),
            age(&bucket["next_run_at"], now),
            age(&last["started_at"], now),
            cell(&last["status"]),
            cell(&last["evaluated"]),
            cell(&last["triggered"]),
            last["duration_ms"]
                .as_f64()
                .map_or("-".to_owned(), milliseconds),
        ]);
    }
    if batches.is_empty() {
        println!("no strategies loaded");
    } else {
        batches.print(out);
    }
    println!();

    out.heading("SOURCES");
    let mut sources = Table::new(&[
        "SOURCE",
        "STATE",
        "LAST SUCCESS",
        "LAST FAILURE",
        "FAILURES",
    ]);
    for (name, source) in status["sources"].as_object().into_iter().flatten() {
        sources.row(&[
            name.clone(),
            cell(&source["state"]),
            age(&source["last_success_at"], now),
            match source["last_failure"].as_str() {
                Some(kind) => format!("{kind}, {}", age(&source["last_failure_at"], now)),
                None => "-".to_owned(),
            },
            cell(&source["consecutive_failures"]),
        ]);
    }
    sources.print(out);
}
