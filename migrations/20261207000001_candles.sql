-- Closed candles kept for backtests (DESIGN §15): filled from the source's history for
-- what a backtest needs and does not have yet, so the same span is asked for once.
CREATE TABLE IF NOT EXISTS candles (
    source    text             NOT NULL,
    symbol    text             NOT NULL,
    interval  text             NOT NULL,
    open_time timestamptz      NOT NULL,
    open      double precision NOT NULL,
    high      double precision NOT NULL,
    low       double precision NOT NULL,
    close     double precision NOT NULL,
    volume    double precision NOT NULL,
    PRIMARY KEY (source, symbol, interval, open_time)
);
-- Retention removes by age.
CREATE INDEX IF NOT EXISTS candles_open_time ON candles (open_time);
