//! Structured logging: every line carries a `component` field so an operator can follow
//! one part of the service (`http`, `storage`, `trigger`, …) with one filter.
//!
//! The component is derived, never typed: the first module below the crate root of the
//! event's target (`monitoring_service::http::auth` → `http`), or the name a short
//! table gives a module whose folder name differs from the component operators know
//! (`trigger::deliverer` → `delivery`, `ops_alerts` → `alert`); the emitting crate for
//! other crates (`sqlx`). An explicit `component` field still wins. Span
//! fields such as `request_id` are merged into each line. Lines are JSON
//! (`LOG_FORMAT=json`) or human-readable (`pretty`), filtered by `RUST_LOG`.

use std::fmt;

use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::{JsonFields, Writer};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

const CRATE_TARGET: &str = "monitoring_service";

/// How log lines are written (`LOG_FORMAT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One JSON object per line, for log shippers (the container default).
    Json,
    /// Human-readable lines, for a terminal.
    Pretty,
}

/// The logging settings: the line format and the `RUST_LOG` filter.
#[derive(Debug, Clone)]
pub struct LogSettings {
    pub format: LogFormat,
    pub filter: String,
}

/// Installs the global subscriber. Call once, before anything logs.
pub fn init(format: LogFormat, filter: &str) {
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .fmt_fields(JsonFields::new())
        .event_format(LineFormat { format })
        .with_writer(std::io::stderr)
        .finish();
    // A second init (tests that build several apps) keeps the first subscriber.
    let _ = tracing::subscriber::set_global_default(subscriber);
}

/// Writes one log line per event, as JSON or as text, always with a `component`.
#[derive(Debug, Clone, Copy)]
pub struct LineFormat {
    pub format: LogFormat,
}

impl<S, N> FormatEvent<S, N> for LineFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        let mut fields = Map::new();
        // Span fields first (outermost to innermost), so the event's own fields win.
        if let Some(scope) = ctx.event_scope() {
            for span in scope.from_root() {
                let extensions = span.extensions();
                if let Some(formatted) = extensions.get::<FormattedFields<N>>()
                    && let Ok(Value::Object(span_fields)) =
                        serde_json::from_str::<Value>(formatted.as_str())
                {
                    fields.extend(span_fields);
                }
            }
        }
        let mut visitor = JsonVisitor(Map::new());
        event.record(&mut visitor);
        fields.extend(visitor.0);

        let message = match fields.remove("message") {
            Some(Value::String(s)) => s,
            Some(other) => other.to_string(),
            None => String::new(),
        };
        let component = match fields.remove("component") {
            Some(Value::String(s)) => s,
            _ => component_of_target(meta.target()).to_owned(),
        };
        let timestamp = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);

        match self.format {
            LogFormat::Json => {
                let mut line = Map::new();
                line.insert("timestamp".into(), Value::String(timestamp));
                line.insert("level".into(), Value::String(meta.level().to_string()));
                line.insert("component".into(), Value::String(component));
                line.insert("target".into(), Value::String(meta.target().to_owned()));
                line.insert("message".into(), Value::String(message));
                for (key, value) in fields {
                    line.entry(key).or_insert(value);
                }
                let text = serde_json::to_string(&Value::Object(line)).map_err(|_| fmt::Error)?;
                writeln!(writer, "{text}")
            }
            LogFormat::Pretty => {
                write!(
                    writer,
                    "{timestamp} {:>5} {component}: {message}",
                    meta.level()
                )?;
                for (key, value) in fields {
                    match value {
                        Value::String(s) => write!(writer, " {key}={s}")?,
                        other => write!(writer, " {key}={other}")?,
                    }
                }
                writeln!(writer)
            }
        }
    }
}

/// The components whose name is not their module's: a module path prefix (below the
/// crate root) and the component its lines carry, most specific first. Operators filter
/// on these names, so they outlive a folder's rename.
const COMPONENTS: &[(&str, &str)] = &[
    ("trigger::deliverer", "delivery"),
    ("strategy::live_reload", "reload"),
    ("ops_alerts", "alert"),
    ("platform_health", "health"),
    ("monitors", "monitor"),
    ("batches", "scheduler"),
    ("app", "service"),
    ("cli", "service"),
];

/// `monitoring_service::http::auth` → `http`; `monitoring_service::trigger::deliverer`
/// → `delivery` (see [`COMPONENTS`]); `monitoring_service` → `service`; `sqlx::query` →
/// `sqlx`.
pub fn component_of_target(target: &str) -> &str {
    let mut parts = target.splitn(2, "::");
    match parts.next() {
        Some(CRATE_TARGET) => {
            let Some(path) = parts.next() else {
                return "service";
            };
            COMPONENTS
                .iter()
                .find(|(prefix, _)| {
                    path.strip_prefix(prefix)
                        .is_some_and(|rest| rest.is_empty() || rest.starts_with("::"))
                })
                .map(|(_, component)| *component)
                .unwrap_or_else(|| path.split("::").next().unwrap_or("service"))
        }
        Some(first) if !first.is_empty() => first,
        _ => "unknown",
    }
}

/// Collects an event's fields as JSON values, keeping numbers and booleans typed.
struct JsonVisitor(Map<String, Value>);

impl Visit for JsonVisitor {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0
            .insert(field.name().to_owned(), Value::String(format!("{value:?}")));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0
            .insert(field.name().to_owned(), Value::String(value.to_owned()));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        // The whole cause chain, so an operator sees why, not just what.
        let mut text = value.to_string();
        let mut source = value.source();
        while let Some(cause) = source {
            text.push_str(": ");
            text.push_str(&cause.to_string());
            source = cause.source();
        }
        self.0.insert(field.name().to_owned(), Value::String(text));
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    use super::*;

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl Write for Buffer {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn capture(format: LogFormat, emit: impl FnOnce()) -> String {
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .fmt_fields(JsonFields::new())
            .event_format(LineFormat { format })
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, emit);
        String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap()
    }

    #[test]
    fn json_lines_carry_component_span_fields_and_typed_values() {
        let out = capture(LogFormat::Json, || {
            let span = tracing::info_span!("request", request_id = "abc-123");
            let _guard = span.enter();
            tracing::info!(attempts = 3, ok = true, "delivered");
        });
        let line: Value = serde_json::from_str(out.trim()).unwrap();
        assert_eq!(line["component"], "telemetry");
        assert_eq!(line["message"], "delivered");
        assert_eq!(line["request_id"], "abc-123");
        assert_eq!(line["attempts"], 3);
        assert_eq!(line["ok"], true);
        assert_eq!(line["level"], "INFO");
    }

    #[test]
    fn an_explicit_component_wins_over_the_target() {
        let out = capture(LogFormat::Json, || {
            tracing::warn!(component = "scheduler", "tick skipped");
        });
        let line: Value = serde_json::from_str(out.trim()).unwrap();
        assert_eq!(line["component"], "scheduler");
    }

    #[test]
    fn pretty_lines_name_the_component() {
        let out = capture(LogFormat::Pretty, || {
            tracing::info!(strategy_id = "s1", "fired");
        });
        assert!(out.contains(" telemetry: fired strategy_id=s1"), "{out}");
    }

    /// An error whose cause is another error.
    #[derive(Debug, thiserror::Error)]
    #[error("the delivery failed")]
    struct DeliveryFailed(#[source] std::io::Error);

    #[test]
    fn errors_are_logged_with_their_whole_cause_chain_in_both_formats() {
        let emit = || {
            let error = DeliveryFailed(std::io::Error::other("connection refused"));
            tracing::warn!(
                attempts = 3,
                error = &error as &dyn std::error::Error,
                "gave up"
            );
        };
        let line: Value = serde_json::from_str(capture(LogFormat::Json, emit).trim()).unwrap();
        assert_eq!(line["error"], "the delivery failed: connection refused");
        assert_eq!(line["attempts"], 3);
        let pretty = capture(LogFormat::Pretty, emit);
        assert!(
            pretty.contains(
                " WARN telemetry: gave up attempts=3 error=the delivery failed: connection refused"
            ),
            "{pretty}"
        );
    }

    #[test]
    fn components_come_from_the_module_path() {
        assert_eq!(
            component_of_target("monitoring_service::http::auth"),
            "http"
        );
        assert_eq!(component_of_target("monitoring_service"), "service");
        assert_eq!(
            component_of_target("monitoring_service::trigger::deliverer"),
            "delivery"
        );
        assert_eq!(
            component_of_target("monitoring_service::trigger::handler"),
            "trigger"
        );
        assert_eq!(
            component_of_target("monitoring_service::ops_alerts"),
            "alert"
        );
        assert_eq!(
            component_of_target("monitoring_service::batches_x::y"),
            "batches_x"
        );
        assert_eq!(component_of_target("sqlx::query"), "sqlx");
    }
}
