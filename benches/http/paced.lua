-- Paces each wrk connection: `delay()` waits WRK_DELAY_MS before every request, so
-- `connections * 1000 / (delay + latency)` requests a second arrive — a fixed offered
-- load (Debian's wrk has no --rate; this is how it holds ~10,000 requests/s).
local delay_ms = tonumber(os.getenv("WRK_DELAY_MS") or "1")
function delay()
  return delay_ms
end
