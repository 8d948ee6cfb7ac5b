-- wrk: POST /api/v2/alerts on Prometheus Alertmanager, one alert per request,
-- round-robin over 50 engines (the same shape of load as tick.lua).
local engines = 50
local count = 0
local delay_ms = tonumber(os.getenv("WRK_DELAY_MS") or "0")
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"

function request()
  count = count + 1
  local body = string.format(
    '[{"labels":{"alertname":"circuit_breaker_triggered","engine_id":"engine-%d","severity":"critical"},' ..
    '"annotations":{"summary":"tick %d"}}]', count % engines, count)
  return wrk.format(nil, nil, nil, body)
end

function delay()
  return delay_ms
end
