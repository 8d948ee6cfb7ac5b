//! `reload [ID…]` and `simulate ID`: reload strategies (exit 1 when any failed
//! validation), and one strategy evaluated without side effects, shown as a table of
//! its conditions — each one's value, its comparison and its result.

use serde_json::{Value, json};
use uuid::Uuid;

use super::output::{Output, Table, cell, format_number, milliseconds};
use super::{Api, ClientError, EXIT_FAILED};

/// Reloads every strategy, or those named.
pub async fn reload(api: &Api, out: &Output, ids: &[Uuid]) -> Result<u8, ClientError> {
    let body = (!ids.is_empty()).then(|| json!({"strategy_ids": ids}));
    let report = api
        .post("/internal/reload-strategies", body.as_ref())
        .await?;
    let errors = report["errors"].as_array().cloned().unwrap_or_default();
    if out.json {
        out.print_json(&report);
    } else {
        println!(
            "reloaded {}, removed {}, {} loaded, {} invalid ({})",
            cell(&report["reloaded"]),
            cell(&report["removed"]),
            cell(&report["loaded"]),
            errors.len(),
            report["duration_ms"]
                .as_f64()
                .map_or("-".into(), milliseconds),
        );
        if !errors.is_empty() {
            let mut table = Table::new(&["STRATEGY", "ERROR"]);
            for error in &errors {
                table.row(&[cell(&error["strategy_id"]), cell(&error["error"])]);
            }
            table.print(out);
        }
    }
    Ok(if errors.is_empty() { 0 } else { EXIT_FAILED })
}

/// Evaluates one strategy now and prints each condition.
pub async fn simulate(api: &Api, out: &Output, id: Uuid) -> Result<u8, ClientError> {
    let snapshot = api.post(&format!("/internal/simulate/{id}"), None).await?;
    if out.json {
        out.print_json(&snapshot);
        return Ok(0);
    }
    if let Some(error) = snapshot["error"].as_str() {
        println!(
            "strategy {id} ({}) does not compile: {error}",
            cell(&snapshot["status"])
        );
        return Ok(0);
    }
    conditions(&snapshot).print(out);
    println!();
    let result = match &snapshot["result"] {
        Value::Bool(true) => "TRUE",
        Value::Bool(false) => "FALSE",
        _ => "UNKNOWN (data missing)",
    };
    let trigger = if snapshot["would_trigger"] == true {
        "yes".to_owned()
    } else {
        format!("no, suppressed by {}", cell(&snapshot["suppressed_by"]))
    };
    println!(
        "strategy {id} ({}): {}, would trigger: {trigger}",
        cell(&snapshot["status"]),
        out.paint(result, super::Tone::of(&result.to_ascii_lowercase())),
    );
    println!(
        "evaluated at {} in {} µs",
        cell(&snapshot["evaluated_at"]),
        cell(&snapshot["duration_us"])
    );
    for failure in snapshot["data_failures"].as_array().into_iter().flatten() {
        println!("data unavailable: {}", cell(failure));
    }
    Ok(0)
}

/// CONDITION | VALUE | COMPARISON | RESULT | CANDLE.
fn conditions(snapshot: &Value) -> Table {
    let mut table = Table::new(&["CONDITION", "VALUE", "COMPARISON", "RESULT", "CANDLE"]);
    for condition in snapshot["conditions"].as_array().into_iter().flatten() {
        let percent = condition["percent"] == true;
        let number = |value: &Value| match value.as_f64() {
            Some(v) if percent => format!("{}%", format_number(v)),
            Some(v) => format_number(v),
            None => "-".to_owned(),
        };
        let observed = &condition["observed"];
        let relation = cell(&condition["relation"]);
        let mut value = number(&observed["value"]);
        if relation.starts_with("crossed") && !observed["previous"].is_null() {
            value = format!("{value} (was {})", number(&observed["previous"]));
        }
        let target = number(&observed["compare_to"]);
        let comparison = match condition["compare_label"].as_str() {
            Some(label) => format!("{relation} {label} ({target})"),
            None => format!("{relation} {target}"),
        };
        let result = match &condition["result"] {
            Value::Bool(result) => result.to_string(),
            _ => "unknown".to_owned(),
        };
        table.row(&[
            cell(&condition["subject"]),
            value,
            comparison,
            result,
            cell(&condition["bar_open_time"]),
        ]);
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_condition_reads_value_comparison_result() {
        let snapshot = json!({"conditions": [
            {"subject": "BTCUSDT 1h RSI(14)", "relation": "crossed below", "compare_label": null,
             "percent": false, "result": true, "bar_open_time": "2026-12-03T09:00:00Z",
             "observed": {"value": 28.41, "previous": 31.02, "compare_to": 30}},
            {"subject": "BTCUSDT 1h EMA(20)", "relation": "above", "compare_label": "EMA(50)",
             "percent": false, "result": false, "bar_open_time": null,
             "observed": {"value": 100.5, "previous": null, "compare_to": 101.25}},
            {"subject": "bitcoin change over 1h", "relation": "above", "compare_label": null,
             "percent": true, "result": null, "bar_open_time": null,
             "observed": {"value": null, "previous": null, "compare_to": 2}}]});
        let rendered = conditions(&snapshot).render(&Output::PLAIN);
        assert_eq!(
            rendered,
            "CONDITION               VALUE              COMPARISON              RESULT   CANDLE\n\
             BTCUSDT 1h RSI(14)      28.41 (was 31.02)  crossed below 30        true     2026-12-03T09:00:00Z\n\
             BTCUSDT 1h EMA(20)      100.5              above EMA(50) (101.25)  false    -\n\
             bitcoin change over 1h  -                  above 2%                unknown  -"
        );
    }
}
