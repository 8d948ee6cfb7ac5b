//! Alert messages: a strategy's `message_template` (minijinja) rendered with the facts
//! of the trigger, or a clear default. A template that fails to render — syntax, a
//! runaway loop (bounded by fuel), anything — falls back to the default and the error
//! is reported: a broken template never drops an alert.

use chrono::{DateTime, Utc};
use minijinja::{Environment, context};
use serde::Serialize;

use crate::conditions::ConditionReport;

/// Longest message sent (Telegram allows 4,096 characters).
pub const MAX_MESSAGE_CHARS: usize = 4000;
/// Template execution budget (minijinja fuel): plenty for a message, not for a loop.
const FUEL: u64 = 50_000;

/// One condition as templates and trigger snapshots see it (`{{ conditions[0].value }}`):
/// a flat view of its [`ConditionReport`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConditionFacts {
    pub id: String,
    pub kind: String,
    pub source: String,
    pub symbol: String,
    pub interval: Option<String>,
    /// true, false or null (unknown).
    pub result: Option<bool>,
    pub value: Option<f64>,
    pub previous: Option<f64>,
    pub compare_to: Option<f64>,
}

impl ConditionFacts {
    /// The facts of one condition as its evaluation reported it.
    pub fn from_report(report: &ConditionReport) -> Self {
        Self {
            id: report.id.to_string(),
            kind: report.kind.clone(),
            source: report.source.clone(),
            symbol: report.symbol.clone(),
            interval: report.interval.clone(),
            result: report.result,
            value: report.observed.value,
            previous: report.observed.previous,
            compare_to: report.observed.compare_to,
        }
    }
}

/// What a message may say about a trigger.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlertFacts {
    pub strategy_id: String,
    pub strategy_name: String,
    pub triggered_at: DateTime<Utc>,
    pub conditions: Vec<ConditionFacts>,
}

/// A rendered message and, when the template failed, why.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    pub text: String,
    pub template_error: Option<String>,
}

fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_fuel(Some(FUEL));
    env
}

/// Checks a template's syntax (strategy validation).
pub fn check_template(template: &str) -> Result<(), String> {
    environment()
        .template_from_str(template)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

fn number(value: Option<f64>) -> String {
    match value {
        Some(v) if v.abs() >= 1000.0 => format!("{v:.2}"),
        Some(v) => {
            let text = format!("{v:.8}");
            text.trim_end_matches('0').trim_end_matches('.').to_owned()
        }
        None => "n/a".to_owned(),
    }
}

/// The default message: the strategy, each condition that held with its values, and
/// the time in UTC.
pub fn default_message(facts: &AlertFacts) -> String {
    let mut lines = vec![format!("🔔 {}", facts.strategy_name)];
    for c in facts.conditions.iter().filter(|c| c.result == Some(true)) {
        let interval = c
            .interval
            .as_deref()
            .map(|i| format!(" {i}"))
            .unwrap_or_default();
        let mut line = format!("{} ({}{interval}): {}", c.symbol, c.source, number(c.value));
        if c.previous.is_some() {
            line.push_str(&format!(", previous {}", number(c.previous)));
        }
        if c.compare_to.is_some() {
            line.push_str(&format!(", threshold {}", number(c.compare_to)));
        }
        lines.push(line);
    }
    lines.push(
        facts
            .triggered_at
            .format("%Y-%m-%d %H:%M:%S UTC")
            .to_string(),
    );
    lines.join("\n")
}

fn truncate(text: String) -> String {
    match text.char_indices().nth(MAX_MESSAGE_CHARS) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

/// Renders `template` (or the default) with the facts. Variables: `strategy_name`,
/// `strategy_id`, `triggered_at` (RFC 3339, UTC), `symbol` and `value` (of the first
/// condition), and `conditions` (id, kind, source, symbol, interval, result, value,
/// previous, compare_to).
pub fn render(template: Option<&str>, facts: &AlertFacts) -> Rendered {
    let Some(template) = template.filter(|t| !t.trim().is_empty()) else {
        return Rendered {
            text: truncate(default_message(facts)),
            template_error: None,
        };
    };
    let first = facts.conditions.first();
    let rendered = environment().render_str(
        template,
        context! {
            strategy_name => &facts.strategy_name,
            strategy_id => &facts.strategy_id,
            triggered_at => facts.triggered_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            symbol => first.map(|c| c.symbol.as_str()),
            value => first.and_then(|c| c.value),
            conditions => &facts.conditions,
        },
    );
    match rendered {
        Ok(text) if !text.trim().is_empty() => Rendered {
            text: truncate(text),
            template_error: None,
        },
        Ok(_) => Rendered {
            text: truncate(default_message(facts)),
            template_error: Some("the template rendered an empty message".into()),
        },
        Err(error) => Rendered {
            text: truncate(default_message(facts)),
            template_error: Some(error.to_string()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> AlertFacts {
        AlertFacts {
            strategy_id: "7f0c".into(),
            strategy_name: "BTC oversold".into(),
            triggered_at: DateTime::parse_from_rfc3339("2026-11-23T10:00:00Z")
                .unwrap()
                .with_timezone(&Utc),
            conditions: vec![
                ConditionFacts {
                    id: "c1".into(),
                    kind: "technical_indicator".into(),
                    source: "binance".into(),
                    symbol: "BTCUSDT".into(),
                    interval: Some("1h".into()),
                    result: Some(true),
                    value: Some(28.41),
                    previous: Some(31.02),
                    compare_to: Some(30.0),
                },
                ConditionFacts {
                    id: "c2".into(),
                    kind: "price_alert".into(),
                    source: "binance".into(),
                    symbol: "BTCUSDT".into(),
                    interval: None,
                    result: Some(false),
                    value: Some(64_210.5),
                    previous: None,
                    compare_to: Some(65_000.0),
                },
            ],
        }
    }

    #[test]
    fn the_default_message_names_the_values_that_fired_and_the_time() {
        let rendered = render(None, &facts());
        assert_eq!(
            rendered.text,
            "🔔 BTC oversold\nBTCUSDT (binance 1h): 28.41, previous 31.02, threshold 30\n2026-11-23 10:00:00 UTC"
        );
        assert_eq!(rendered.template_error, None);
    }

    #[test]
    fn templates_use_the_documented_variables() {
        let rendered = render(
            Some(
                "{{ strategy_name }}: {{ symbol }} RSI {{ value }} at {{ triggered_at }} ({{ conditions | length }} conditions, 2nd {{ conditions[1].value }})",
            ),
            &facts(),
        );
        assert_eq!(
            rendered.text,
            "BTC oversold: BTCUSDT RSI 28.41 at 2026-11-23T10:00:00Z (2 conditions, 2nd 64210.5)"
        );
    }

    #[test]
    fn broken_or_runaway_templates_fall_back_to_the_default() {
        let default = default_message(&facts());
        for template in [
            "{{ unclosed",
            "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}",
            "{{ \"x\" + 1 }}",
            "   ",
        ] {
            let rendered = render(Some(template), &facts());
            assert_eq!(rendered.text, default, "{template}");
        }
        assert!(
            render(Some("{{ unclosed"), &facts())
                .template_error
                .is_some()
        );
        assert!(check_template("{{ unclosed").is_err());
        assert!(check_template("{{ symbol }} {% if value < 30 %}low{% endif %}").is_ok());
        let long = render(Some("{% for i in range(3000) %}xy{% endfor %}"), &facts());
        assert_eq!(long.text.chars().count(), MAX_MESSAGE_CHARS + 1);
    }
}
