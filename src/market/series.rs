//! A series of closed candles, stored by column so indicators read contiguous slices.

/// Closed candles of one (source, symbol, interval), oldest first. Never contains the
/// forming candle: whoever builds it drops candles whose close time is in the future.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CandleSeries {
    /// Open time of each candle, Unix milliseconds.
    pub open_time: Vec<i64>,
    pub open: Vec<f64>,
    pub high: Vec<f64>,
    pub low: Vec<f64>,
    pub close: Vec<f64>,
    pub volume: Vec<f64>,
}

impl CandleSeries {
    pub fn len(&self) -> usize {
        self.close.len()
    }

    pub fn is_empty(&self) -> bool {
        self.close.is_empty()
    }

    /// The open, high, low, close and volume columns.
    fn price_columns(&mut self) -> [&mut Vec<f64>; 5] {
        [
            &mut self.open,
            &mut self.high,
            &mut self.low,
            &mut self.close,
            &mut self.volume,
        ]
    }

    /// Appends one candle.
    pub fn push(&mut self, open_time: i64, ohlcv: [f64; 5]) {
        let [open, high, low, close, volume] = ohlcv;
        self.open_time.push(open_time);
        self.open.push(open);
        self.high.push(high);
        self.low.push(low);
        self.close.push(close);
        self.volume.push(volume);
    }

    /// Keeps only candles whose close time (`open_time + interval`) is at or before
    /// `now_ms`: a forming candle must never reach an indicator.
    pub fn retain_closed(&mut self, interval_ms: i64, now_ms: i64) {
        let closed = self
            .open_time
            .iter()
            .take_while(|&&t| t + interval_ms <= now_ms)
            .count();
        for column in self.price_columns() {
            column.truncate(closed);
        }
        self.open_time.truncate(closed);
    }

    /// Removes every candle, keeping the columns' memory.
    pub fn clear(&mut self) {
        for column in self.price_columns() {
            column.clear();
        }
        self.open_time.clear();
    }

    /// Removes the `n` oldest candles.
    pub fn drop_front(&mut self, n: usize) {
        let n = n.min(self.len());
        for column in self.price_columns() {
            column.drain(..n);
        }
        self.open_time.drain(..n);
    }

    /// The open time of the last closed candle.
    pub fn last_open_time(&self) -> Option<i64> {
        self.open_time.last().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_forming_candle_is_dropped() {
        let mut series = CandleSeries::default();
        for (i, t) in [0, 60_000, 120_000].into_iter().enumerate() {
            series.push(t, [1.0, 2.0, 0.5, i as f64, 10.0]);
        }
        series.retain_closed(60_000, 150_000);
        assert_eq!(series.len(), 2);
        assert_eq!(series.last_open_time(), Some(60_000));
        assert_eq!(series.close, vec![0.0, 1.0]);
    }
}
