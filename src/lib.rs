//! monitoring-service watches trading strategies around the clock and tells their
//! owners the moment a strategy's conditions hold.
//!
//! The layout follows the data flow of DESIGN.md §2: [`config`] and [`telemetry`] set
//! the process up, [`storage`] owns Postgres and Redis, [`http`] is the interface
//! (probes, metrics, `/internal/*`), and [`app`] ties the lifecycle together;
//! [`client`] is the operator CLI that talks to a running service.

#![forbid(unsafe_code)]

pub mod alertmanager;
pub mod analysis;
pub mod app;
pub mod backtest;
pub mod batches;
pub mod bounded_body;
pub mod cli;
pub mod conditions;
pub mod config;
pub mod digest;
pub mod failpoint;
pub mod frequency;
pub mod http;
pub mod indicators;
pub mod logic_tree;
pub mod market;
pub mod message;
pub mod metrics;
pub mod monitors;
pub mod notify;
pub mod ops_alerts;
pub mod ops_rules;
pub mod outbound;
pub mod platform_health;
pub mod sharding;
pub mod storage;
pub mod strategy;
pub mod telemetry;
pub mod trigger;
pub mod validation;
