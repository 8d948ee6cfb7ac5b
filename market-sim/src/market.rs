//! The instruments the simulator knows: Binance symbols, CoinGecko coin ids and
//! Uniswap v3 pools, each with a price path.

use std::collections::BTreeMap;

use crate::paths::{PricePath, Script, seed_of};

/// An ERC-20 token of a simulated pool.
#[derive(Debug, Clone, PartialEq)]
pub struct Token {
    pub address: String,
    pub decimals: u8,
}

/// A Uniswap v3 pool: the path is the price of token0 in token1 (human units).
#[derive(Debug, Clone, PartialEq)]
pub struct Pool {
    pub token0: Token,
    pub token1: Token,
    pub path: PricePath,
}

/// Everything priced by the simulator.
#[derive(Debug, Clone, Default)]
pub struct Market {
    pub binance: BTreeMap<String, PricePath>,
    pub coingecko: BTreeMap<String, PricePath>,
    /// Keyed by lower-case pool address.
    pub pools: BTreeMap<String, Pool>,
    /// Stretches Binance has no klines for (an exchange outage): by symbol, open times
    /// in `[from, to)` (Unix ms). The klines endpoint leaves them out, as Binance does.
    pub kline_gaps: BTreeMap<String, Vec<(i64, i64)>>,
}

impl Market {
    /// Whether Binance has no kline of `symbol` opened at `open_ms`.
    pub fn in_gap(&self, symbol: &str, open_ms: i64) -> bool {
        self.kline_gaps.get(symbol).is_some_and(|gaps| {
            gaps.iter()
                .any(|&(from, to)| open_ms >= from && open_ms < to)
        })
    }
}

/// Well-known instruments and the price they wander around.
const BINANCE_DEFAULTS: &[(&str, f64)] = &[
    ("BTCUSDT", 65_000.0),
    ("ETHUSDT", 3_500.0),
    ("BNBUSDT", 600.0),
    ("SOLUSDT", 150.0),
    ("XRPUSDT", 0.6),
    ("ADAUSDT", 0.45),
    ("DOGEUSDT", 0.12),
    ("LTCBTC", 0.0013),
    ("ETHBTC", 0.054),
];

/// CoinGecko ids and the Binance symbol whose path they follow (so a fallback price is
/// close to the primary one, as in the real world).
const COINGECKO_DEFAULTS: &[(&str, &str)] = &[
    ("bitcoin", "BTCUSDT"),
    ("ethereum", "ETHUSDT"),
    ("binancecoin", "BNBUSDT"),
    ("solana", "SOLUSDT"),
    ("ripple", "XRPUSDT"),
    ("cardano", "ADAUSDT"),
    ("dogecoin", "DOGEUSDT"),
];

/// The USDC/WETH 0.05% pool on Ethereum mainnet.
pub const USDC_WETH_POOL: &str = "0x88e6a0c2ddd26feeb64f039a2c41296fcb3f5640";

impl Market {
    /// The default instruments plus `extra_symbols` (generated Binance symbols).
    pub fn with_defaults(extra_symbols: &[String]) -> Self {
        let mut market = Market::default();
        for (symbol, base) in BINANCE_DEFAULTS {
            market
                .binance
                .insert((*symbol).to_owned(), PricePath::generated(symbol, *base));
        }
        for symbol in extra_symbols {
            let base = 0.5 + 500.0 * crate::paths::unit(seed_of(symbol));
            market
                .binance
                .insert(symbol.clone(), PricePath::generated(symbol, base));
        }
        for (id, symbol) in COINGECKO_DEFAULTS {
            let path = market.binance[*symbol].clone();
            market.coingecko.insert((*id).to_owned(), path);
        }
        market.pools.insert(
            USDC_WETH_POOL.to_owned(),
            Pool {
                token0: Token {
                    address: "0xa0b86991c6218b36c1d19d4a2e9eb0ce3606eb48".into(),
                    decimals: 6,
                },
                token1: Token {
                    address: "0xc02aaa39b223fe8d0a0e5c4f27ead9083c756cc2".into(),
                    decimals: 18,
                },
                path: PricePath::generated(USDC_WETH_POOL, 1.0 / 3_500.0),
            },
        );
        market
    }

    /// Replaces the paths a script names (adding unknown Binance symbols and coins).
    pub fn apply(&mut self, script: &Script) -> Result<(), String> {
        for scripted in &script.paths {
            if scripted.step_ms <= 0 || scripted.points.is_empty() {
                return Err(format!(
                    "{}: step_ms must be positive and points non-empty",
                    scripted.symbol
                ));
            }
            let path = PricePath::Scripted {
                start_ms: scripted.start_ms,
                step_ms: scripted.step_ms,
                points: scripted.points.clone(),
            };
            match scripted.source.as_str() {
                "binance" => {
                    self.binance.insert(scripted.symbol.clone(), path);
                }
                "coingecko" => {
                    self.coingecko.insert(scripted.symbol.clone(), path);
                }
                "uniswap" => {
                    let pool = self
                        .pools
                        .get_mut(&scripted.symbol.to_ascii_lowercase())
                        .ok_or_else(|| format!("unknown pool {}", scripted.symbol))?;
                    pool.path = path;
                }
                other => return Err(format!("unknown source {other}")),
            }
        }
        Ok(())
    }
}
