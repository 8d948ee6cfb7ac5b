-- wrk: POST /internal/engine/ticks, the seed's full tick, round-robin over 50 engines.
-- WRK_DELAY_MS paces each connection (connections * 1000 / (delay + latency) ticks a
-- second); 0 is flat out.
local engines = 50
local count = 0
local delay_ms = tonumber(os.getenv("WRK_DELAY_MS") or "0")
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-MONITORING-KEY"] = os.getenv("BENCH_KEY")

function request()
  count = count + 1
  local body = string.format(
    '{"engine_id":"engine-%d","heartbeat":{"uptime_seconds":%d},' ..
    '"positions":{"count":3,"total_value":150000.0,"symbols":["RELIANCE","TCS","INFY"]},' ..
    '"pnl":{"daily":2500.5,"unrealized":1200.0,"realized":1300.5},' ..
    '"risk":{"circuit_breaker_active":false,"daily_loss_pct":-0.25,"max_position_value":50000.0},' ..
    '"sentiment":{"last_score":0.65,"provider_errors_1h":0,"cache_hit_rate":0.85},' ..
    '"connectivity":{"breeze_authenticated":true},' ..
    '"artifacts":{"teacher_model_age_hours":12,"student_model_age_hours":6}}',
    count % engines, count)
  return wrk.format(nil, nil, nil, body)
end

function delay()
  return delay_ms
end
