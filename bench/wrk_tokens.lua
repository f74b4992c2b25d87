-- wrk script for bench/proxy_bench.py: every request carries "Authorization: Bearer <token>",
-- cycling through a token file (one per line), starting at a given line. Requests are formatted
-- once in init() so the per-request Lua cost is one table lookup, the same in every scenario.
--   wrk -s bench/wrk_tokens.lua URL -- TOKENS_FILE [START_INDEX]
local requests, count, index = {}, 0, 0

function init(args)
  for line in io.lines(args[1]) do
    count = count + 1
    requests[count] = wrk.format("GET", nil, {["Authorization"] = "Bearer " .. line})
  end
  if count == 0 then error("no tokens in " .. args[1]) end
  index = (tonumber(args[2] or "0") or 0) % count
end

function request()
  index = index % count + 1
  return requests[index]
end

-- One machine-readable line for the runner.
function done(summary, latency, _)
  local e = summary.errors
  io.write(string.format(
    "WRK_RESULT {\"requests\":%d,\"duration_us\":%d,\"status_errors\":%d,\"socket_errors\":%d," ..
    "\"p50_us\":%d,\"p99_us\":%d}\n",
    summary.requests, summary.duration, e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
