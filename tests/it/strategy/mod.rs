//! Strategies: loading, reloading (webhook, Redis, Postgres), their route and fixed windows.

mod fixed_windows;
mod live_reload;
mod loader;
mod reload;
mod strategy_route;
