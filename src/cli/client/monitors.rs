//! `monitors` and `run NAME`: the periodic jobs with their health, and one run now
//! (its ledger row; `all` runs each one).

use chrono::Utc;
use serde_json::Value;

use super::output::{Output, Table, age, cell, milliseconds};
use super::{Api, ClientError, EXIT_FAILED, segment};

/// Prints every monitor.
pub async fn list(api: &Api, out: &Output) -> Result<u8, ClientError> {
    let answer = api.get("/internal/monitors").await?;
    if out.json {
        out.print_json(&answer);
        return Ok(0);
    }
    let now = Utc::now();
    let mut table = Table::new(&[
        "NAME",
        "HEALTH",
        "INTERVAL",
        "LAST RUN",
        "LAST STATUS",
        "NEXT RUN",
        "SNOOZED UNTIL",
    ]);
    for monitor in answer["monitors"].as_array().into_iter().flatten() {
        let interval = match monitor["interval_seconds"].as_i64() {
            Some(seconds) => format!("{seconds}s"),
            None => "by frequency".to_owned(),
        };
        let health = if monitor["running"] == true {
            format!("{} (running)", cell(&monitor["health"]))
        } else {
            cell(&monitor["health"])
        };
        table.row(&[
            cell(&monitor["name"]),
            health,
            interval,
            age(&monitor["last_run"], now),
            cell(&monitor["last_status"]),
            age(&monitor["next_run"], now),
            cell(&monitor["snoozed_until"]),
        ]);
    }
    table.print(out);
    Ok(0)
}

/// Runs `name` (or `all`) now; exit 1 when a run failed.
pub async fn run(api: &Api, out: &Output, name: &str) -> Result<u8, ClientError> {
    let answer = api
        .post(&format!("/internal/monitors/{}/run", segment(name)), None)
        .await?;
    let runs: Vec<(String, Value, Option<String>)> = if name == "all" {
        answer["runs"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|run| {
                (
                    cell(&run["name"]),
                    run["ledger"].clone(),
                    run["error"].as_str().map(str::to_owned),
                )
            })
            .collect()
    } else {
        vec![(name.to_owned(), answer.clone(), None)]
    };
    // A monitor already running is not a failure; a failed run or an unreachable
    // database is.
    let failed = answer["runs"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|run| run["code"] == "unavailable")
        || runs
            .iter()
            .any(|(_, ledger, _)| ledger["status"] == "failed");
    if out.json {
        out.print_json(&answer);
    } else {
        let mut table = Table::new(&[
            "NAME",
            "STATUS",
            "DURATION",
            "EVALUATED",
            "TRIGGERED",
            "ERRORS",
            "DETAILS",
        ]);
        for (name, ledger, error) in &runs {
            let status = match (error, ledger.is_null()) {
                (Some(_), _) => "not run".to_owned(),
                (None, true) => "skipped".to_owned(),
                (None, false) => cell(&ledger["status"]),
            };
            let details = match error {
                Some(error) => error.clone(),
                None => details(&ledger["details"]),
            };
            table.row(&[
                name.clone(),
                status,
                ledger["duration_ms"]
                    .as_f64()
                    .map_or("-".to_owned(), milliseconds),
                cell(&ledger["evaluated"]),
                cell(&ledger["triggered"]),
                cell(&ledger["errors"]),
                details,
            ]);
        }
        table.print(out);
    }
    Ok(if failed { EXIT_FAILED } else { 0 })
}

/// A run's details on one line: `key=value …`, or `-`.
fn details(details: &Value) -> String {
    match details.as_object() {
        Some(map) if !map.is_empty() => map
            .iter()
            .map(|(k, v)| format!("{k}={}", cell(v)))
            .collect::<Vec<_>>()
            .join(" "),
        _ => "-".to_owned(),
    }
}
