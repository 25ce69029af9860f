-- wrk script: unique lead per request; every 2xx lead id is written to a per-thread file for checking.
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
  out = io.open(string.format("%s/ids-%d.txt", os.getenv("BENCH_OUT"), thread_id), "w")
end

function request()
  counter = counter + 1
  local phone = string.format("13%d%08d", thread_id, counter)
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
