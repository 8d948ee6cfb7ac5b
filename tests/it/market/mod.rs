//! Market data: sources, caches, the WebSocket feed and their faults.

mod candle_history;
mod market_data;
mod market_data_faults;
mod market_feed;
