//! Integration tests: the real server and binary against the real Postgres and Redis
//! that `scripts/test.sh` provisions. One binary keeps link time down.

mod alertmanager;
mod analysis;
mod backtest;
mod batches;
mod cli;
mod http;
mod market;
mod ops_alerts;
mod ops_rules;
mod platform_health;
mod service;
mod sharding;
mod strategy;
mod support;
mod trigger;
