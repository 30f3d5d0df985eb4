-- Requests from a list (BENCH.requests_file: one raw HTTP request a line,
-- CR LF written as \r\n), in turn, round and round. With BENCH.once
-- (authorization codes) thread i sends lines i, i + threads, ... once each,
-- then stops.

local mine, next_line, spent = {}, 1, false
local HARMLESS = "GET /bench/floor/json HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"

function init(args)
  local index = 0
  for line in io.lines(BENCH.requests_file) do
    if not BENCH.once or index % BENCH.threads == thread_index then
      table.insert(mine, (line:gsub("\\r\\n", "\r\n")))
    end
    index = index + 1
  end
  -- Threads start evenly apart, so together they cover the list soonest.
  next_line = BENCH.once and 1 or math.floor(thread_index * #mine / BENCH.threads) + 1
end

function request()
  if next_line > #mine then
    if BENCH.once then
      -- Never send a code twice (a replay revokes its grant); a connection
      -- still open gets a harmless request, not counted, and the thread stops.
      spent = true
      stop_thread()
      return HARMLESS
    end
    next_line = 1
  end
  started()
  next_line = next_line + 1
  return mine[next_line - 1]
end

function response(status, headers, body)
  if spent then return end
  count(status == BENCH.expect_status)
end
