//! Every Prometheus metric the service exports, named in one place. Labels are bounded:
//! a route template, never a raw path; a status code, never an error text.

mod alerts;
mod analysis;
mod engine_ticks;
mod health;
mod shards;

pub use alerts::AlertMetrics;
pub use analysis::AnalysisMetrics;
pub use engine_ticks::EngineMetrics;
pub use health::HealthMetrics;
pub use shards::ShardMetrics;

use prometheus::{
    Encoder, GaugeVec, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

/// The service's metric registry and handles to its metrics.
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    /// `monitoring_http_requests_total{method, route, status}`
    pub http_requests: IntCounterVec,
    /// `monitoring_http_request_duration_seconds{method, route}`
    pub http_request_duration: HistogramVec,
    /// `monitoring_http_requests_in_flight`
    pub http_in_flight: IntGauge,
    /// `monitoring_readiness_check{check}`: 1 when the check passed at the last `/ready`.
    pub readiness_check: IntGaugeVec,
    /// Market data: upstream calls, caches, the WebSocket feed.
    pub market: MarketMetrics,
    /// Batches and evaluations.
    pub scheduler: SchedulerMetrics,
    /// The strategy index and its reloads.
    pub strategies: StrategyMetrics,
    /// Operational alerts: events, episodes, notifications, the log.
    pub alerts: AlertMetrics,
    /// Trading-engine ticks and the rules over them.
    pub engine: EngineMetrics,
    /// Platform health: the system's status and each dependency's.
    pub health: HealthMetrics,
    /// Candle-close analysis: llm-proxy calls, decisions, skips.
    pub analysis: AnalysisMetrics,
    /// Automatic sharding: shards held, hand-overs, fenced writes.
    pub shards: ShardMetrics,
}

/// The strategy index: what is loaded, and reloads. `kind` is `full` or `ids`,
/// `result` is `ok` or `error`, `status` is `loaded` or `error`.
#[derive(Clone)]
pub struct StrategyMetrics {
    /// `monitoring_strategies{status}`: strategies in the index (`loaded`: compiled and
    /// evaluated; `error`: failed validation).
    pub strategies: IntGaugeVec,
    /// `monitoring_strategy_reloads_total{kind, result}`
    pub reloads: IntCounterVec,
    /// `monitoring_strategy_reload_duration_seconds{kind}`
    pub reload_duration: HistogramVec,
    /// `monitoring_live_reload_following`: 1 while `strategy:updated` is followed.
    pub live_reload_following: IntGauge,
}

impl StrategyMetrics {
    fn new() -> Self {
        Self {
            strategies: IntGaugeVec::new(
                Opts::new(
                    "monitoring_strategies",
                    "Strategies in this replica's index, by status (loaded, error).",
                ),
                &["status"],
            )
            .expect("valid metric"),
            reloads: counter(
                "monitoring_strategy_reloads_total",
                "Strategy reloads, by kind (full, ids) and result (ok, error).",
                &["kind", "result"],
            ),
            reload_duration: HistogramVec::new(
                HistogramOpts::new(
                    "monitoring_strategy_reload_duration_seconds",
                    "Wall time of a strategy reload, from its start to the new index published.",
                )
                .buckets(vec![
                    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
                ]),
                &["kind"],
            )
            .expect("valid metric"),
            live_reload_following: IntGauge::new(
                "monitoring_live_reload_following",
                "1 while strategy:updated announcements are followed, 0 while (re)connecting.",
            )
            .expect("valid metric"),
        }
    }

    fn collectors(&self) -> Vec<Box<dyn prometheus::core::Collector>> {
        vec![
            Box::new(self.strategies.clone()),
            Box::new(self.reloads.clone()),
            Box::new(self.reload_duration.clone()),
            Box::new(self.live_reload_following.clone()),
        ]
    }
}

impl std::fmt::Debug for StrategyMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StrategyMetrics").finish_non_exhaustive()
    }
}

/// Batch and evaluation metrics. `frequency` is `10s` … `1d`, or `cron` (expressions
/// are user input and would make the label unbounded).
#[derive(Clone)]
pub struct SchedulerMetrics {
    /// `monitoring_evaluations_total{frequency, result}`: result true, false, unknown.
    pub evaluations: IntCounterVec,
    /// `monitoring_batches_total{frequency, status}`: ok or partial.
    pub batches: IntCounterVec,
    /// `monitoring_batches_skipped_total{frequency}`: ticks that found the previous
    /// batch still running.
    pub batches_skipped: IntCounterVec,
    /// `monitoring_batch_duration_seconds{frequency}`
    pub batch_duration: HistogramVec,
    /// `monitoring_strategies_lacking_data{frequency}`: strategies unknown for several
    /// evaluations in a row (data outage; they stay active).
    pub lacking_data: IntGaugeVec,
    /// `monitoring_triggers_total{frequency}`: triggers claimed (and delivered).
    pub triggers: IntCounterVec,
    /// `monitoring_deliveries_total{channel, status}`: delivered or failed.
    pub deliveries: IntCounterVec,
    /// `monitoring_deliveries_ambiguous_total{channel}`: requests a channel may have
    /// accepted though no answer came back (each a possible duplicate).
    pub deliveries_ambiguous: IntCounterVec,
    /// `monitoring_evaluation_latency_seconds{frequency}`: from the moment a batch's
    /// data was due (its period boundary, or the candle's close) to its strategies
    /// evaluated — how late alerts can be, before delivery.
    pub evaluation_latency: HistogramVec,
    /// `monitoring_last_batch_timestamp_seconds{frequency}`: when the last batch ended.
    pub last_batch: GaugeVec,
    /// `monitoring_batch_interval_seconds{frequency}`: the period of fixed frequencies
    /// (for "no batch for 3 intervals").
    pub batch_interval: IntGaugeVec,
}

impl SchedulerMetrics {
    fn new() -> Self {
        Self {
            evaluations: counter(
                "monitoring_evaluations_total",
                "Strategy evaluations, by frequency and result (true, false, unknown).",
                &["frequency", "result"],
            ),
            batches: counter(
                "monitoring_batches_total",
                "Batches run, by frequency and status (ok, partial).",
                &["frequency", "status"],
            ),
            batches_skipped: counter(
                "monitoring_batches_skipped_total",
                "Batch ticks skipped because the previous batch was still running.",
                &["frequency"],
            ),
            batch_duration: HistogramVec::new(
                HistogramOpts::new(
                    "monitoring_batch_duration_seconds",
                    "Wall time of a batch: prefetch, evaluation, state and ledger writes.",
                )
                .buckets(vec![
                    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
                ]),
                &["frequency"],
            )
            .expect("valid metric"),
            triggers: counter(
                "monitoring_triggers_total",
                "Triggers claimed, by frequency.",
                &["frequency"],
            ),
            deliveries: counter(
                "monitoring_deliveries_total",
                "Alert deliveries, by channel and final status (delivered, failed).",
                &["channel", "status"],
            ),
            deliveries_ambiguous: counter(
                "monitoring_deliveries_ambiguous_total",
                "Delivery requests sent whose answer never came back (a timeout after sending): possible duplicates, by channel.",
                &["channel"],
            ),
            lacking_data: IntGaugeVec::new(
                Opts::new(
                    "monitoring_strategies_lacking_data",
                    "Strategies evaluated unknown several times in a row, by frequency.",
                ),
                &["frequency"],
            )
            .expect("valid metric"),
            evaluation_latency: HistogramVec::new(
                HistogramOpts::new(
                    "monitoring_evaluation_latency_seconds",
                    "From a batch's due time (period boundary or candle close) to its strategies evaluated.",
                )
                .buckets(vec![
                    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
                ]),
                &["frequency"],
            )
            .expect("valid metric"),
            last_batch: GaugeVec::new(
                Opts::new(
                    "monitoring_last_batch_timestamp_seconds",
                    "Unix time at which the last batch of each frequency ended.",
                ),
                &["frequency"],
            )
            .expect("valid metric"),
            batch_interval: IntGaugeVec::new(
                Opts::new(
                    "monitoring_batch_interval_seconds",
                    "The period of each fixed batch frequency.",
                ),
                &["frequency"],
            )
            .expect("valid metric"),
        }
    }

    fn collectors(&self) -> Vec<Box<dyn prometheus::core::Collector>> {
        vec![
            Box::new(self.evaluations.clone()),
            Box::new(self.batches.clone()),
            Box::new(self.batches_skipped.clone()),
            Box::new(self.batch_duration.clone()),
            Box::new(self.lacking_data.clone()),
            Box::new(self.triggers.clone()),
            Box::new(self.deliveries.clone()),
            Box::new(self.deliveries_ambiguous.clone()),
            Box::new(self.evaluation_latency.clone()),
            Box::new(self.last_batch.clone()),
            Box::new(self.batch_interval.clone()),
        ]
    }
}

impl std::fmt::Debug for SchedulerMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SchedulerMetrics").finish_non_exhaustive()
    }
}

/// A labelled counter; names are fixed in this module, so they are always valid.
fn counter(name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric")
}

/// The market-data metrics. Labels: `source` (binance, coingecko, uniswap), `endpoint`
/// (a path template), `status` (a code or `error`), `kind` (price, klines, price_ago),
/// `layer` (l1, l2), `reason` (a fixed word) — all bounded.
#[derive(Clone)]
pub struct MarketMetrics {
    /// `monitoring_upstream_requests_total{source, endpoint, status}`
    pub upstream_requests: IntCounterVec,
    /// `monitoring_upstream_request_duration_seconds{source, endpoint}`
    pub upstream_duration: HistogramVec,
    /// `monitoring_upstream_errors_total{source, endpoint, kind}`
    pub upstream_errors: IntCounterVec,
    /// `monitoring_upstream_skipped_total{source, reason}`: calls not sent (paused host,
    /// weight budget).
    pub upstream_skipped: IntCounterVec,
    /// `monitoring_binance_used_weight`: the last `X-MBX-USED-WEIGHT-1M` seen.
    pub binance_used_weight: IntGauge,
    /// `monitoring_market_cache_requests_total{kind, layer, result}`
    pub cache_requests: IntCounterVec,
    /// `monitoring_price_fallbacks_total{from, to}`
    pub fallbacks: IntCounterVec,
    /// `monitoring_websocket_reconnects_total{reason}`
    pub ws_reconnects: IntCounterVec,
    /// `monitoring_websocket_connected`: open market-stream connections.
    pub ws_connected: IntGauge,
    /// `monitoring_websocket_streams`: kline streams subscribed.
    pub ws_streams: IntGauge,
    /// `monitoring_websocket_lag_seconds`: now minus the last event's time.
    pub ws_lag: prometheus::Gauge,
    /// `monitoring_candle_closes_total{via}`: closes published (websocket, backfill, poll).
    pub candle_closes: IntCounterVec,
}

impl MarketMetrics {
    fn new() -> Self {
        Self {
            upstream_requests: counter(
                "monitoring_upstream_requests_total",
                "Requests sent to market-data sources, by source, endpoint and status.",
                &["source", "endpoint", "status"],
            ),
            upstream_duration: HistogramVec::new(
                HistogramOpts::new(
                    "monitoring_upstream_request_duration_seconds",
                    "Latency of market-data requests, by source and endpoint.",
                )
                .buckets(vec![
                    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
                ]),
                &["source", "endpoint"],
            )
            .expect("valid metric"),
            upstream_errors: counter(
                "monitoring_upstream_errors_total",
                "Failed market-data requests, by source, endpoint and error kind.",
                &["source", "endpoint", "kind"],
            ),
            upstream_skipped: counter(
                "monitoring_upstream_skipped_total",
                "Market-data requests not sent (host paused by a rate limit, weight budget spent).",
                &["source", "reason"],
            ),
            binance_used_weight: IntGauge::new(
                "monitoring_binance_used_weight",
                "The request weight Binance reported used in the current minute.",
            )
            .expect("valid metric"),
            cache_requests: counter(
                "monitoring_market_cache_requests_total",
                "Market-data cache lookups, by datum kind, layer and result.",
                &["kind", "layer", "result"],
            ),
            fallbacks: counter(
                "monitoring_price_fallbacks_total",
                "Prices answered by the fallback source, by primary and fallback source.",
                &["from", "to"],
            ),
            ws_reconnects: counter(
                "monitoring_websocket_reconnects_total",
                "Market-stream reconnections, by reason.",
                &["reason"],
            ),
            ws_connected: IntGauge::new(
                "monitoring_websocket_connected",
                "Open market-stream WebSocket connections.",
            )
            .expect("valid metric"),
            ws_streams: IntGauge::new(
                "monitoring_websocket_streams",
                "Kline streams subscribed over WebSocket.",
            )
            .expect("valid metric"),
            ws_lag: prometheus::Gauge::new(
                "monitoring_websocket_lag_seconds",
                "Seconds between the last market-stream event's time and its arrival.",
            )
            .expect("valid metric"),
            candle_closes: counter(
                "monitoring_candle_closes_total",
                "Candle closes published to the scheduler, by how they were learnt.",
                &["via"],
            ),
        }
    }

    fn collectors(&self) -> Vec<Box<dyn prometheus::core::Collector>> {
        vec![
            Box::new(self.upstream_requests.clone()),
            Box::new(self.upstream_duration.clone()),
            Box::new(self.upstream_errors.clone()),
            Box::new(self.upstream_skipped.clone()),
            Box::new(self.binance_used_weight.clone()),
            Box::new(self.cache_requests.clone()),
            Box::new(self.fallbacks.clone()),
            Box::new(self.ws_reconnects.clone()),
            Box::new(self.ws_connected.clone()),
            Box::new(self.ws_streams.clone()),
            Box::new(self.ws_lag.clone()),
            Box::new(self.candle_closes.clone()),
        ]
    }
}

impl std::fmt::Debug for MarketMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MarketMetrics").finish_non_exhaustive()
    }
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Metrics {
    /// Builds the registry with process metrics and the service's own.
    pub fn new() -> Self {
        let registry = Registry::new();
        let http_requests = IntCounterVec::new(
            Opts::new(
                "monitoring_http_requests_total",
                "HTTP requests served, by method, route template and status code.",
            ),
            &["method", "route", "status"],
        )
        .expect("valid metric");
        let http_request_duration = HistogramVec::new(
            HistogramOpts::new(
                "monitoring_http_request_duration_seconds",
                "HTTP request latency, by method and route template.",
            )
            .buckets(vec![
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                10.0,
            ]),
            &["method", "route"],
        )
        .expect("valid metric");
        let http_in_flight = IntGauge::new(
            "monitoring_http_requests_in_flight",
            "HTTP requests being served now.",
        )
        .expect("valid metric");
        let readiness_check = IntGaugeVec::new(
            Opts::new(
                "monitoring_readiness_check",
                "1 when the readiness check passed at the last /ready, else 0.",
            ),
            &["check"],
        )
        .expect("valid metric");
        let build_info = IntGaugeVec::new(
            Opts::new(
                "monitoring_build_info",
                "Always 1; labelled with the version.",
            ),
            &["version"],
        )
        .expect("valid metric");
        build_info
            .with_label_values(&[env!("CARGO_PKG_VERSION")])
            .set(1);

        let market = MarketMetrics::new();
        let mut collectors: Vec<Box<dyn prometheus::core::Collector>> = vec![
            Box::new(http_requests.clone()),
            Box::new(http_request_duration.clone()),
            Box::new(http_in_flight.clone()),
            Box::new(readiness_check.clone()),
            Box::new(build_info),
        ];
        collectors.extend(market.collectors());
        let scheduler = SchedulerMetrics::new();
        collectors.extend(scheduler.collectors());
        let strategies = StrategyMetrics::new();
        collectors.extend(strategies.collectors());
        let alerts = AlertMetrics::new();
        collectors.extend(alerts.collectors());
        let engine = EngineMetrics::new();
        collectors.extend(engine.collectors());
        let health = HealthMetrics::new();
        collectors.extend(health.collectors());
        let analysis = AnalysisMetrics::new();
        collectors.extend(analysis.collectors());
        let shards = ShardMetrics::new();
        collectors.extend(shards.collectors());
        for collector in collectors {
            registry
                .register(collector)
                .expect("metric names are unique");
        }
        #[cfg(target_os = "linux")]
        registry
            .register(Box::new(
                prometheus::process_collector::ProcessCollector::for_self(),
            ))
            .expect("process metrics register once");

        Self {
            registry,
            http_requests,
            http_request_duration,
            http_in_flight,
            readiness_check,
            market,
            scheduler,
            strategies,
            alerts,
            engine,
            health,
            analysis,
            shards,
        }
    }

    /// The registry in Prometheus text exposition format.
    pub fn render(&self) -> String {
        let mut buffer = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut buffer)
            .expect("encoding to a Vec cannot fail");
        String::from_utf8(buffer).expect("the text format is UTF-8")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    /// Every `monitoring_*` name in `text`, without histogram suffixes.
    fn referenced(text: &str) -> BTreeSet<String> {
        let mut names = BTreeSet::new();
        let mut rest = text;
        while let Some(at) = rest.find("monitoring_") {
            let tail = &rest[at..];
            let end = tail
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(tail.len());
            let name = &tail[..end];
            let name = ["_bucket", "_count", "_sum"]
                .iter()
                .find_map(|suffix| name.strip_suffix(suffix))
                .unwrap_or(name);
            names.insert(name.to_owned());
            rest = &tail[end..];
        }
        names
    }

    #[test]
    fn the_dashboard_and_the_alert_rules_use_only_metrics_the_service_exports() {
        let sources = [
            include_str!("mod.rs"),
            include_str!("alerts.rs"),
            include_str!("engine_ticks.rs"),
            include_str!("health.rs"),
            include_str!("analysis.rs"),
            include_str!("shards.rs"),
        ]
        .concat();
        let exported: BTreeSet<String> = referenced(&sources)
            .into_iter()
            .filter(|name| name.ends_with(|c: char| c.is_ascii_lowercase()))
            .collect();
        let dashboard = include_str!("../../deploy/grafana/monitoring-service.json");
        let rules = include_str!("../../deploy/prometheus/monitoring-service.rules.yml");
        for (file, text) in [("dashboard", dashboard), ("rules", rules)] {
            let used = referenced(text);
            assert!(used.len() >= 6, "{file} uses {used:?}");
            let unknown: Vec<_> = used.difference(&exported).collect();
            assert!(
                unknown.is_empty(),
                "{file} uses unknown metrics {unknown:?}"
            );
        }
        // The dashboard shows every metric the service exports but build info.
        let shown = referenced(dashboard);
        let missing: Vec<_> = exported
            .iter()
            .filter(|name| !shown.contains(*name) && *name != "monitoring_service")
            .collect();
        assert!(missing.is_empty(), "not on the dashboard: {missing:?}");
    }
}
