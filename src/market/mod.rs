//! Market data as the engine sees it: sources, candle intervals, closed-candle series,
//! the per-batch snapshot of everything fetched, and the data needs that conditions
//! declare so a batch fetches each datum once.

mod interval;
mod needs;
mod series;
mod snapshot;

pub use interval::Interval;
pub use needs::{DataNeed, DataNeeds};
pub use series::CandleSeries;
pub use snapshot::{MarketSnapshot, PriceKey, Quote, SeriesKey};

use serde::{Deserialize, Serialize};

/// Where a datum comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// Binance spot: symbols such as `BTCUSDT`; prices and candles.
    Binance,
    /// CoinGecko: coin ids such as `bitcoin`, priced in USD.
    Coingecko,
    /// A Uniswap v3 pool address: the price of token0 in token1.
    Uniswap,
}

impl Source {
    pub const ALL: [Source; 3] = [Source::Binance, Source::Coingecko, Source::Uniswap];

    pub fn as_str(self) -> &'static str {
        match self {
            Source::Binance => "binance",
            Source::Coingecko => "coingecko",
            Source::Uniswap => "uniswap",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// Whether `symbol` is well-formed for this source, with a hint when it is not.
    pub fn check_symbol(self, symbol: &str) -> Result<(), &'static str> {
        let ok = match self {
            Source::Binance => {
                (2..=20).contains(&symbol.len())
                    && symbol
                        .bytes()
                        .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
            }
            Source::Coingecko => {
                (1..=100).contains(&symbol.len())
                    && symbol
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            }
            Source::Uniswap => {
                symbol.len() == 42
                    && symbol.starts_with("0x")
                    && symbol[2..].bytes().all(|b| b.is_ascii_hexdigit())
            }
        };
        if ok {
            Ok(())
        } else {
            Err(match self {
                Source::Binance => "must be a Binance spot symbol such as BTCUSDT (A-Z, 0-9)",
                Source::Coingecko => "must be a CoinGecko coin id such as bitcoin (a-z, 0-9, -)",
                Source::Uniswap => "must be a Uniswap v3 pool address (0x and 40 hex digits)",
            })
        }
    }
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
