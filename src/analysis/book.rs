//! The schedules being monitored, held in memory by series: what each candle close
//! looks up. Replaced whole on each reload (a `workflow:updated` message, a reload
//! request, a transition, or the periodic resync).

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use arc_swap::ArcSwap;
use uuid::Uuid;

use crate::market::{Interval, SeriesKey, Source};
use crate::storage::workflow_schedules::ScheduleRow;

/// The monitored schedules, grouped by (symbol, interval).
#[derive(Debug, Default)]
pub struct Book {
    pub by_series: HashMap<SeriesKey, Vec<ScheduleRow>>,
    /// Rows whose interval is not one the candle feed knows (never analysed).
    pub unusable: usize,
}

impl Book {
    /// Groups `rows` by their Binance series.
    pub fn of(rows: Vec<ScheduleRow>) -> Self {
        let mut book = Book::default();
        for row in rows {
            match series_of(&row) {
                Some(key) => book.by_series.entry(key).or_default().push(row),
                None => book.unusable += 1,
            }
        }
        book
    }

    pub fn series(&self) -> BTreeSet<SeriesKey> {
        self.by_series.keys().cloned().collect()
    }

    pub fn len(&self) -> usize {
        self.by_series.values().map(Vec::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.by_series.is_empty()
    }

    pub fn find(&self, id: Uuid) -> Option<&ScheduleRow> {
        self.by_series.values().flatten().find(|row| row.id == id)
    }
}

/// The series a schedule follows: Binance spot (the feed's source), its symbol
/// upper-cased, its interval; `None` for an interval the feed does not know.
pub fn series_of(row: &ScheduleRow) -> Option<SeriesKey> {
    let interval = Interval::parse(row.interval.trim())?;
    let symbol = row.symbol.trim().to_ascii_uppercase();
    Source::Binance.check_symbol(&symbol).ok()?;
    Some(SeriesKey {
        source: Source::Binance,
        symbol: Arc::from(symbol.as_str()),
        interval,
    })
}

/// The current book, swapped atomically.
#[derive(Debug, Default)]
pub struct ScheduleBook {
    current: ArcSwap<Book>,
}

impl ScheduleBook {
    pub fn get(&self) -> Arc<Book> {
        self.current.load_full()
    }

    pub fn replace(&self, book: Book) {
        self.current.store(Arc::new(book));
    }
}
