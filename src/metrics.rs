//! Every Prometheus metric the service exports, named in one place. Labels are bounded:
//! a route template, never a raw path; a status code, never an error text.

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
    TextEncoder,
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

        for collector in [
            Box::new(http_requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(http_request_duration.clone()),
            Box::new(http_in_flight.clone()),
            Box::new(readiness_check.clone()),
            Box::new(build_info),
        ] {
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
