//! Integration tests: the real server and binary against the real Postgres and Redis
//! that `scripts/test.sh` provisions. One binary keeps link time down.

mod acceptance;
mod analysis;
mod batches;
mod binary;
mod cli;
mod delivery_leases;
mod email;
mod engine_ticks;
mod evaluation_paths;
mod faults;
mod fixed_windows;
mod health_outages;
mod http_api;
mod indicators_golden;
mod live_reload;
mod loader;
mod market_data;
mod market_feed;
mod monitors;
mod notifications;
mod notify_test;
mod ops_alert_notifications;
mod ops_alerts;
mod outages;
mod platform_health;
mod reload;
mod rolling;
mod schema;
mod secrets;
mod sharding;
mod simulate;
mod status_route;
mod strategy_route;
mod support;
mod triggers;
