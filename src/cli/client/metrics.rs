//! `metrics`: an engine's ticks aggregated per step (`/internal/engine/metrics`), one
//! row per step with the last value of each chosen field — every engine that ticked
//! when none is named.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::output::{Output, Table, cell};
use super::{Api, ClientError};

/// Shown when no `--field` is given.
const DEFAULT_FIELDS: &[&str] = &[
    "pnl.daily",
    "pnl.unrealized",
    "positions.count",
    "risk.daily_loss_pct",
    "sentiment.last_score",
];

/// Prints the history of `engine` (or of every engine that ticked) over `since`.
pub async fn metrics(
    api: &Api,
    out: &Output,
    engine: Option<&str>,
    since: Duration,
    step: &str,
    fields: &[String],
) -> Result<u8, ClientError> {
    let engines: Vec<String> = match engine {
        Some(engine) => vec![engine.to_owned()],
        None => api.get("/internal/engines").await?["engines"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|e| !e["last_tick_at"].is_null())
            .filter_map(|e| e["engine_id"].as_str().map(str::to_owned))
            .collect(),
    };
    let since: DateTime<Utc> = Utc::now()
        - chrono::Duration::from_std(since)
            .map_err(|_| ClientError::Usage("--since: too long".into()))?;
    let mut histories = Vec::new();
    for engine in &engines {
        let query = [
            ("engine_id", engine.clone()),
            ("since", since.to_rfc3339()),
            ("step", step.to_owned()),
        ];
        histories.push(api.get_with("/internal/engine/metrics", &query).await?);
    }
    if out.json {
        out.print_json(&json!({"engines": histories}));
        return Ok(0);
    }
    if histories.is_empty() {
        println!("no engine has ticked");
    }
    let fields: Vec<&str> = if fields.is_empty() {
        DEFAULT_FIELDS.to_vec()
    } else {
        fields.iter().map(String::as_str).collect()
    };
    for (at, history) in histories.iter().enumerate() {
        if at > 0 {
            println!();
        }
        out.heading(&format!(
            "{} (step {}s, last value per step)",
            cell(&history["engine_id"]),
            cell(&history["step_seconds"])
        ));
        table(history, &fields).print(out);
    }
    Ok(0)
}

fn table(history: &Value, fields: &[&str]) -> Table {
    let mut header = vec!["TIME"];
    header.extend_from_slice(fields);
    let mut table = Table::new(&header);
    for step in history["steps"].as_array().into_iter().flatten() {
        let mut row = vec![cell(&step["at"])];
        for field in fields {
            row.push(cell(&step["fields"][*field]["last"]));
        }
        table.row(&row);
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_row_per_step_with_each_fields_last_value() {
        let history = json!({"engine_id": "live-1", "step_seconds": 60, "steps": [
            {"at": "2026-12-03T10:00:00Z", "fields": {"pnl.daily": {"last": 2500.5}}},
            {"at": "2026-12-03T10:01:00Z", "fields": {"pnl.daily": {"last": 2600.0},
                                                      "positions.count": {"last": 3.0}}}]});
        let rendered = table(&history, &["pnl.daily", "positions.count"]).render(&Output::PLAIN);
        assert_eq!(
            rendered,
            "TIME                  pnl.daily  positions.count\n\
             2026-12-03T10:00:00Z  2500.5     -\n\
             2026-12-03T10:01:00Z  2600       3"
        );
    }
}
