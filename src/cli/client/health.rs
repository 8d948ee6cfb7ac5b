//! `health`: the platform status, each target's check, and each trading engine as its
//! last tick left it (heartbeat, circuit breaker, connectivity, models' freshness).
//! The exit code follows the Nagios convention so it can back a probe: 0 OK,
//! 1 DEGRADED, 2 CRITICAL, 3 unknown (unreachable, refused, no snapshot yet).

use chrono::Utc;
use serde_json::{Value, json};

use super::output::{Output, Table, Tone, age, cell, format_number, milliseconds};
use super::{Api, ClientError, EXIT_UNREACHABLE};

/// The exit code of a platform status.
pub fn exit_code(status: &str) -> u8 {
    match status {
        "OK" => 0,
        "DEGRADED" => 1,
        "CRITICAL" => 2,
        _ => EXIT_UNREACHABLE,
    }
}

/// Prints the platform's health; answers the Nagios exit code.
pub async fn health(api: &Api, out: &Output) -> Result<u8, ClientError> {
    let system = api.get("/internal/health/system").await?;
    // An older server has no engine overview: the platform status still stands.
    let engines = match api.get("/internal/engines").await {
        Ok(answer) => Some(answer),
        Err(ClientError::UnknownRoute { .. }) => None,
        Err(error) => return Err(error),
    };
    let status = system["status"].as_str().unwrap_or("UNKNOWN").to_owned();
    if out.json {
        out.print_json(
            &json!({"system": system, "engines": engines.as_ref().map(|e| &e["engines"])}),
        );
        return Ok(exit_code(&status));
    }
    let now = Utc::now();
    println!(
        "{} (as of {})",
        out.paint(&status, Tone::of(&status)),
        age(&system["timestamp"], now)
    );
    if let Some(failures) = system["critical_failures"]
        .as_array()
        .filter(|f| !f.is_empty())
    {
        let names: Vec<String> = failures.iter().map(cell).collect();
        println!("critical failures: {}", names.join(", "));
    }
    println!();
    let mut targets = Table::new(&[
        "TARGET", "KIND", "CRITICAL", "STATUS", "LATENCY", "SINCE", "ERROR",
    ]);
    for (name, check) in system["checks"].as_object().into_iter().flatten() {
        targets.row(&[
            name.clone(),
            cell(&check["kind"]),
            if check["critical"] == true {
                "yes"
            } else {
                "no"
            }
            .to_owned(),
            cell(&check["status"]),
            check["latency_ms"]
                .as_f64()
                .map_or("-".to_owned(), milliseconds),
            age(&check["since"], now),
            cell(&check["error"]),
        ]);
    }
    targets.print(out);
    println!();
    match engines {
        None => println!("engines: this server does not report them (an older version?)"),
        Some(answer) => engine_table(out, &answer["engines"]),
    }
    Ok(exit_code(&status))
}

fn engine_table(out: &Output, engines: &Value) {
    let engines = engines.as_array().cloned().unwrap_or_default();
    if engines.is_empty() {
        println!("no engine has ticked");
        return;
    }
    let now = Utc::now();
    let mut table = Table::new(&[
        "ENGINE",
        "LAST TICK",
        "HEARTBEAT",
        "CIRCUIT BREAKER",
        "CONNECTIVITY",
        "TEACHER MODEL",
        "STUDENT MODEL",
    ]);
    for engine in &engines {
        table.row(&[
            cell(&engine["engine_id"]),
            age(&engine["last_tick_at"], now),
            cell(&engine["heartbeat"]),
            cell(&engine["circuit_breaker"]),
            cell(&engine["connectivity"]["state"]),
            model(&engine["teacher_model"]),
            model(&engine["student_model"]),
        ]);
    }
    table.print(out);
}

/// `fresh (12h)`, `stale (30h)`, `missing`, `unreported`.
fn model(freshness: &Value) -> String {
    let state = cell(&freshness["state"]);
    match freshness["age_hours"].as_f64() {
        Some(hours) => format!("{state} ({}h)", format_number(hours)),
        None => state,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_follow_nagios() {
        assert_eq!(exit_code("OK"), 0);
        assert_eq!(exit_code("DEGRADED"), 1);
        assert_eq!(exit_code("CRITICAL"), 2);
        assert_eq!(exit_code("SOMETHING ELSE"), 3);
    }

    #[test]
    fn a_model_shows_its_age() {
        assert_eq!(
            model(&json!({"state": "stale", "age_hours": 30.5})),
            "stale (30.5h)"
        );
        assert_eq!(
            model(&json!({"state": "missing", "age_hours": null})),
            "missing"
        );
    }
}
