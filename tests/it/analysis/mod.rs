//! Candle-close analysis through the llm-proxy, and its failures.

mod analysis_calls;
mod analysis_failures;
