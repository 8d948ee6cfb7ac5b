//! `backtest [ID] [--from T] [--to T] [--strategy-file F]`: when would a strategy have
//! fired? A table of the fires — the time, each condition's value against its
//! threshold — then the counts: moments, fires, what was suppressed, the series read
//! and their gaps; with both an id and a file, the fires the edit adds and removes.

use std::path::Path;

use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::output::{Output, Table, cell, format_number, milliseconds};
use super::{Api, ClientError};

/// What to backtest.
pub struct BacktestArgs<'a> {
    pub strategy_id: Option<Uuid>,
    pub strategy_file: Option<&'a Path>,
    pub from: Option<&'a str>,
    pub to: Option<&'a str>,
}

/// Runs the backtest and prints it.
pub async fn backtest(api: &Api, out: &Output, args: BacktestArgs<'_>) -> Result<u8, ClientError> {
    let body = request_body(&args)?;
    let report = api.post("/internal/backtest", Some(&body)).await?;
    if out.json {
        out.print_json(&report);
        return Ok(0);
    }
    let fires = fires(&report);
    if fires.is_empty() {
        println!("no fires");
    } else {
        fires.print(out);
    }
    println!();
    for line in summary(&report) {
        println!("{line}");
    }
    Ok(0)
}

/// The request: the id, the draft read from the file, the span.
fn request_body(args: &BacktestArgs<'_>) -> Result<Value, ClientError> {
    let mut body = Map::new();
    if let Some(id) = args.strategy_id {
        body.insert("strategy_id".into(), json!(id));
    }
    if let Some(path) = args.strategy_file {
        let text = std::fs::read_to_string(path).map_err(|error| {
            ClientError::Usage(format!("cannot read {}: {error}", path.display()))
        })?;
        let draft: Value = serde_json::from_str(&text).map_err(|error| {
            ClientError::Usage(format!("{} is not JSON: {error}", path.display()))
        })?;
        body.insert("strategy".into(), draft);
    }
    if body.is_empty() {
        return Err(ClientError::Usage(
            "give a strategy id, --strategy-file, or both".into(),
        ));
    }
    for (name, value) in [("from", args.from), ("to", args.to)] {
        if let Some(value) = value {
            body.insert(name.into(), json!(value));
        }
    }
    Ok(Value::Object(body))
}

/// AT | BAR | one column per condition: `value (was previous) vs threshold`.
fn fires(report: &Value) -> Table {
    let fires = report["fires"].as_array().cloned().unwrap_or_default();
    let count = fires
        .first()
        .and_then(|f| f["conditions"].as_array())
        .map_or(0, Vec::len);
    let mut header = vec!["AT".to_owned(), "BAR".to_owned()];
    header.extend((1..=count).map(|i| format!("CONDITION {i}")));
    let header: Vec<&str> = header.iter().map(String::as_str).collect();
    let mut table = Table::new(&header);
    let number = |value: &Value| value.as_f64().map_or("-".to_owned(), format_number);
    for fire in &fires {
        let mut row = vec![cell(&fire["at"]), cell(&fire["bar_open_time"])];
        for condition in fire["conditions"].as_array().into_iter().flatten() {
            let mut value = number(&condition["value"]);
            if !condition["previous"].is_null() {
                value = format!("{value} (was {})", number(&condition["previous"]));
            }
            let mark = match condition["result"].as_bool() {
                Some(true) => "✓",
                Some(false) => "✗",
                None => "?",
            };
            row.push(format!(
                "{mark} {value} vs {}",
                number(&condition["compare_to"])
            ));
        }
        table.row(&row);
    }
    table
}

/// The counts after the table.
fn summary(report: &Value) -> Vec<String> {
    let mut lines = vec![format!(
        "{} fires in {} moments from {} to {} ({} unknown), in {}",
        cell(&report["fires_total"]),
        cell(&report["moments"]),
        cell(&report["from"]),
        cell(&report["to"]),
        cell(&report["unknown"]),
        report["duration_ms"]
            .as_f64()
            .map_or("-".into(), milliseconds),
    )];
    if let Some(suppressed) = report["suppressed"].as_object() {
        let counts: Vec<String> = suppressed
            .iter()
            .map(|(reason, n)| format!("{reason} {}", cell(n)))
            .collect();
        lines.push(format!("suppressed: {}", counts.join(", ")));
    }
    for series in report["series"].as_array().into_iter().flatten() {
        lines.push(format!(
            "series {} {} {}: {} candles ({} from the store, {} fetched)",
            cell(&series["source"]),
            cell(&series["symbol"]),
            cell(&series["interval"]),
            cell(&series["candles"]),
            cell(&series["from_store"]),
            cell(&series["fetched"]),
        ));
    }
    for gap in report["gaps"].as_array().into_iter().flatten() {
        lines.push(format!(
            "gap {} {}: no candles from {} to {}",
            cell(&gap["symbol"]),
            cell(&gap["interval"]),
            cell(&gap["from"]),
            cell(&gap["to"]),
        ));
    }
    if let Some(compare) = report.get("compare") {
        let times = |list: &Value| {
            let times: Vec<String> = list.as_array().into_iter().flatten().map(cell).collect();
            if times.is_empty() {
                "none".to_owned()
            } else {
                times.join(", ")
            }
        };
        lines.push(format!("the edit adds: {}", times(&compare["added"])));
        lines.push(format!("the edit removes: {}", times(&compare["removed"])));
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fires_read_as_a_table_then_the_counts() {
        let report = json!({
            "fires": [{"at": "2026-11-03T14:00:00Z", "bar_open_time": "2026-11-03T13:00:00Z",
                       "conditions": [{"result": true, "value": 28.41, "previous": 31.02, "compare_to": 30}]}],
            "fires_total": 1, "moments": 720, "unknown": 0, "duration_ms": 12.5,
            "from": "2026-11-01T00:00:00Z", "to": "2026-12-01T00:00:00Z",
            "suppressed": {"cooldown": 0, "same_bar": 2},
            "series": [{"source": "binance", "symbol": "BTCUSDT", "interval": "1h",
                        "candles": 836, "from_store": 800, "fetched": 36}],
            "gaps": [], "compare": {"added": ["2026-11-03T14:00:00Z"], "removed": []}});
        assert_eq!(
            fires(&report).render(&Output::PLAIN),
            "AT                    BAR                   CONDITION 1\n\
             2026-11-03T14:00:00Z  2026-11-03T13:00:00Z  ✓ 28.41 (was 31.02) vs 30"
        );
        assert_eq!(
            summary(&report),
            [
                "1 fires in 720 moments from 2026-11-01T00:00:00Z to 2026-12-01T00:00:00Z (0 unknown), in 12.5 ms",
                "suppressed: cooldown 0, same_bar 2",
                "series binance BTCUSDT 1h: 836 candles (800 from the store, 36 fetched)",
                "the edit adds: 2026-11-03T14:00:00Z",
                "the edit removes: none",
            ]
        );
    }

    #[test]
    fn a_backtest_needs_an_id_or_a_file() {
        let args = BacktestArgs {
            strategy_id: None,
            strategy_file: None,
            from: None,
            to: None,
        };
        assert!(matches!(request_body(&args), Err(ClientError::Usage(_))));
    }
}
