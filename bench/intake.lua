-- wrk script: unique lead per request; every 2xx lead id is written to a per-thread file for checking.
-- BENCH_RUN (0, 1, 2, ...) gives each wrk run its own phone prefixes, so a later run makes new leads
-- instead of merging into the open leads of an earlier one.
local prefixes = {"130","131","132","133","134","135","136","137","138","139","145","147","150","151","152",
  "153","155","156","157","158","159","162","165","166","167","170","171","172","173","175","176","177","178",
  "180","181","182","183","184","185","186","187","188","189","190","191","192","193","195","196","197","198","199"}
local prefix = "138"
local counter = 0
local thread_id = 0
local out = nil
local threads = {}

function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  thread_id = tid
  local run = tonumber(os.getenv("BENCH_RUN") or "0")
  prefix = prefixes[((run * 2 + thread_id - 1) % #prefixes) + 1]
  out = io.open(string.format("%s/ids-%d.txt", os.getenv("BENCH_OUT"), thread_id), "w")
end

function request()
  counter = counter + 1
  local phone = string.format("%s%08d", prefix, counter)
  local body = string.format('{"name":"压测%d-%d","phone":"%s","city":"上海","message":"bench"}', thread_id, counter, phone)
  return wrk.format("POST", nil, {["Content-Type"] = "application/json"}, body)
end

function response(status, headers, body)
  if status >= 200 and status < 300 then
    local id = string.match(body, '"lead_id":"([^"]+)"')
    if id then out:write(id, "\n"); out:flush() end
  end
end

function done(summary, latency, requests)
  io.write(string.format("p95_us=%d\n", latency:percentile(95)))
end
