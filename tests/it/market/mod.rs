//! Market data: sources, caches, the WebSocket feed and their faults.

mod market_data;
mod market_data_faults;
mod market_feed;
