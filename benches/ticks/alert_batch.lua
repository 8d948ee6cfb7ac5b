-- wrk: POST /api/v2/alerts with batches of 100 alerts, as Prometheus sends them. The
-- batches cycle over 100 fixed sets (10,000 distinct alerts), so the first pass opens
-- episodes and every later one re-sends firing alerts — Prometheus' steady state.
-- The same script drives Alertmanager and the service (which also needs the key:
-- BENCH_KEY, sent as a bearer token when set).
local batches = {}
local per_batch = 100
for b = 0, 99 do
  local alerts = {}
  for j = 0, per_batch - 1 do
    local n = b * per_batch + j
    alerts[#alerts + 1] = string.format(
      '{"labels":{"alertname":"BenchAlert","instance":"host-%d","job":"node","severity":"warning"},' ..
      '"annotations":{"summary":"load on host-%d","description":"bench"}}', n, n)
  end
  batches[b] = "[" .. table.concat(alerts, ",") .. "]"
end
local count = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local key = os.getenv("BENCH_BEARER")
if key and key ~= "" then
  wrk.headers["Authorization"] = "Bearer " .. key
end

-- Each wrk thread starts half-way round from the previous one.
local threads = 0
function setup(thread)
  thread:set("first", threads * 50)
  threads = threads + 1
end

function init(args)
  count = first or 0
end

function request()
  count = count + 1
  return wrk.format(nil, nil, nil, batches[count % 100])
end
