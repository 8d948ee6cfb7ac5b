-- Demo strategies for scripts/dev.sh, in the JSON of DESIGN.md §4 and §6. Idempotent.
-- Their channels go to the simulator's inbox (psql variable `inbox`, its URL), which
-- prints every message: Telegram through TELEGRAM_API_URL, the others as webhooks.
-- Strategies 4 and 5 are complementary (SOL closes above / below its 20-minute average):
-- one of them fires at every 1m close.
INSERT INTO strategies (id, user_id, name, logic_tree, frequency, trigger_mode, cooldown_seconds, channels)
VALUES
  ('00000000-0000-4000-8000-000000000001', '00000000-0000-4000-8000-0000000000aa',
   'BTC oversold on the hour',
   '{"and": [{"condition": "00000000-0000-4000-8000-000000000101"},
             {"condition": "00000000-0000-4000-8000-000000000102"}]}',
   'candle_close', 'once_per_bar_close', 0,
   '[{"type": "telegram", "chat_id": "123456"}]'),
  ('00000000-0000-4000-8000-000000000002', '00000000-0000-4000-8000-0000000000aa',
   'ETH trend flip (EMA 20 crosses EMA 50, 4h)',
   '{"condition": "00000000-0000-4000-8000-000000000201"}',
   '5m', 'on_rising_edge', 300,
   ('[{"type": "webhook", "url": "' || :'inbox' || '/hook", "secret": "demo-secret"}]')::jsonb),
  ('00000000-0000-4000-8000-000000000003', '00000000-0000-4000-8000-0000000000bb',
   'BTC above 65k or down 5% in an hour',
   '{"or": [{"condition": "00000000-0000-4000-8000-000000000301"},
            {"condition": "00000000-0000-4000-8000-000000000302"}]}',
   '1m', 'every_time', 900,
   ('[{"type": "slack", "webhook_url": "' || :'inbox' || '/slack"}]')::jsonb),
  ('00000000-0000-4000-8000-000000000004', '00000000-0000-4000-8000-0000000000bb',
   'SOL closes above its 20-minute average',
   '{"condition": "00000000-0000-4000-8000-000000000401"}',
   'candle_close', 'once_per_bar_close', 0,
   ('[{"type": "discord", "webhook_url": "' || :'inbox' || '/discord"}]')::jsonb),
  ('00000000-0000-4000-8000-000000000005', '00000000-0000-4000-8000-0000000000bb',
   'SOL closes below its 20-minute average',
   '{"condition": "00000000-0000-4000-8000-000000000501"}',
   'candle_close', 'once_per_bar_close', 0,
   '[{"type": "telegram", "chat_id": "123456"}]')
ON CONFLICT (id) DO NOTHING;

INSERT INTO strategy_conditions (id, strategy_id, kind, params)
VALUES
  ('00000000-0000-4000-8000-000000000101', '00000000-0000-4000-8000-000000000001', 'technical_indicator',
   '{"source": "binance", "symbol": "BTCUSDT", "interval": "1h", "indicator": "rsi", "period": 14, "operator": "below", "value": 30}'),
  ('00000000-0000-4000-8000-000000000102', '00000000-0000-4000-8000-000000000001', 'technical_indicator',
   '{"source": "binance", "symbol": "BTCUSDT", "interval": "1h", "indicator": "ema", "period": 200, "operator": "below", "compare_to": "price"}'),
  ('00000000-0000-4000-8000-000000000201', '00000000-0000-4000-8000-000000000002', 'technical_indicator',
   '{"source": "binance", "symbol": "ETHUSDT", "interval": "4h", "indicator": "ema", "period": 20, "operator": "crosses_above", "compare_to": {"indicator": "ema", "period": 50}}'),
  ('00000000-0000-4000-8000-000000000301', '00000000-0000-4000-8000-000000000003', 'price_alert',
   '{"source": "binance", "symbol": "BTCUSDT", "operator": "crosses_above", "value": 65000}'),
  ('00000000-0000-4000-8000-000000000302', '00000000-0000-4000-8000-000000000003', 'price_alert',
   '{"source": "coingecko", "symbol": "bitcoin", "operator": "pct_change_below", "value": -5, "window": "1h"}'),
  ('00000000-0000-4000-8000-000000000401', '00000000-0000-4000-8000-000000000004', 'technical_indicator',
   '{"source": "binance", "symbol": "SOLUSDT", "interval": "1m", "indicator": "sma", "period": 20, "operator": "below", "compare_to": "price"}'),
  ('00000000-0000-4000-8000-000000000501', '00000000-0000-4000-8000-000000000005', 'technical_indicator',
   '{"source": "binance", "symbol": "SOLUSDT", "interval": "1m", "indicator": "sma", "period": 20, "operator": "above", "compare_to": "price"}')
ON CONFLICT (id) DO NOTHING;

-- A monitored signal (DESIGN §14): re-analysed by the (simulated) llm-proxy at every
-- close of ETHUSDT 1m until it is entered; the run command scripts continue,
-- continue, enter. In the cycle already (last_candle_time set), so the latest close is
-- analysed as soon as the service starts.
INSERT INTO workflow_schedules (id, entity_id, trader_id, interval, symbol, last_candle_time, max_reanalyses)
VALUES ('00000000-0000-4000-8000-0000000005c1', '00000000-0000-4000-8000-0000000005a1',
        '00000000-0000-4000-8000-0000000000aa', '1m', 'ETHUSDT', 0, 5)
ON CONFLICT (id) DO NOTHING;
