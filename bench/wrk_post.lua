-- wrk script of bench/native_load.py: every connection POSTs the JSON body read from the file
-- named by the script's first argument (`wrk ... -s wrk_post.lua <url> -- <body file>`), and
-- at the end one line "native_load: {json}" tells what wrk saw: responses, measured time, p50
-- and p99 latency (microseconds, over every response), answers other than 2xx (with the first
-- one's status and the start of its body), and wrk's socket errors.

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  local file = assert(io.open(args[1], "rb"))
  wrk.method = "POST"
  wrk.body = file:read("*a")
  file:close()
  wrk.headers["Content-Type"] = "application/json"
  non_2xx = 0
  first_error = ""
end

function response(status, headers, body)
  if status < 200 or status > 299 then
    non_2xx = non_2xx + 1
    if first_error == "" then
      first_error = "HTTP " .. status .. ": " .. body:sub(1, 200)
    end
  end
end

local function json_string(s)
  return '"' .. (s:gsub('[%c"\\]', function(c) return string.format("\\u%04x", c:byte()) end)) .. '"'
end

function done(summary, latency, requests)
  local non_2xx_total, first = 0, ""
  for _, thread in ipairs(threads) do
    non_2xx_total = non_2xx_total + thread:get("non_2xx")
    if first == "" then
      first = thread:get("first_error")
    end
  end
  local e = summary.errors
  io.write("native_load: ", string.format(
    '{"responses": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, "non_2xx": %d, '
      .. '"connect": %d, "read": %d, "write": %d, "timeout": %d, "first_error": %s}',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    non_2xx_total, e.connect, e.read, e.write, e.timeout, json_string(first)
  ), "\n")
end
