//! Compact binary encodings of cached market data, for the shared Redis cache.

use super::{CandleSeries, Quote, Source};

/// Encodes a quote: price, answering source, time.
pub fn encode_quote(quote: &Quote) -> Vec<u8> {
    let mut out = Vec::with_capacity(17);
    out.extend_from_slice(&quote.price.to_le_bytes());
    out.push(match quote.answered_by {
        Source::Binance => 0,
        Source::Coingecko => 1,
        Source::Uniswap => 2,
    });
    out.extend_from_slice(&quote.at_ms.to_le_bytes());
    out
}

pub fn decode_quote(bytes: &[u8]) -> Option<Quote> {
    if bytes.len() != 17 {
        return None;
    }
    let price = f64::from_le_bytes(bytes[0..8].try_into().ok()?);
    let answered_by = *Source::ALL.get(usize::from(bytes[8]))?;
    let at_ms = i64::from_le_bytes(bytes[9..17].try_into().ok()?);
    Some(Quote {
        price,
        answered_by,
        at_ms,
    })
}

pub fn encode_f64(value: f64) -> Vec<u8> {
    value.to_le_bytes().to_vec()
}

pub fn decode_f64(bytes: &[u8]) -> Option<f64> {
    Some(f64::from_le_bytes(bytes.try_into().ok()?))
}

/// Encodes a series column by column: count, open times, then O, H, L, C, V.
pub fn encode_series(series: &CandleSeries) -> Vec<u8> {
    let n = series.len();
    let mut out = Vec::with_capacity(4 + n * 48);
    out.extend_from_slice(&(n as u32).to_le_bytes());
    for t in &series.open_time {
        out.extend_from_slice(&t.to_le_bytes());
    }
    for column in [
        &series.open,
        &series.high,
        &series.low,
        &series.close,
        &series.volume,
    ] {
        for v in column {
            out.extend_from_slice(&v.to_le_bytes());
        }
    }
    out
}

pub fn decode_series(bytes: &[u8]) -> Option<CandleSeries> {
    let n = u32::from_le_bytes(bytes.get(0..4)?.try_into().ok()?) as usize;
    if bytes.len() != 4 + n * 48 {
        return None;
    }
    let words = |column: usize| {
        let start = 4 + column * n * 8;
        bytes[start..start + n * 8].chunks_exact(8)
    };
    let floats = |column| {
        words(column)
            .map(|w| f64::from_le_bytes(w.try_into().expect("8 bytes")))
            .collect()
    };
    Some(CandleSeries {
        open_time: words(0)
            .map(|w| i64::from_le_bytes(w.try_into().expect("8 bytes")))
            .collect(),
        open: floats(1),
        high: floats(2),
        low: floats(3),
        close: floats(4),
        volume: floats(5),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodings_round_trip_and_reject_garbage() {
        let quote = Quote {
            price: 65_000.5,
            answered_by: Source::Coingecko,
            at_ms: 1_700_000_000_000,
        };
        assert_eq!(decode_quote(&encode_quote(&quote)), Some(quote));
        let mut series = CandleSeries::default();
        series.push(60_000, [1.0, 2.0, 0.5, 1.5, 10.0]);
        series.push(120_000, [1.5, 2.5, 1.0, 2.0, 11.0]);
        assert_eq!(decode_series(&encode_series(&series)), Some(series));
        assert_eq!(decode_series(b"\x05\0\0\0"), None);
        assert_eq!(decode_quote(b"short"), None);
        assert_eq!(decode_f64(&encode_f64(2.5)), Some(2.5));
    }
}
