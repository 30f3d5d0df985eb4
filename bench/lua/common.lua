-- Shared by every scenario (bench/load.py puts a BENCH table of parameters
-- before this file and the scenario's own script after it).
--
-- Each wrk thread counts its answers (good / bad / lost), stops by itself at
-- its share of the request cap, and notes when it sent its first request and
-- got its last answer: wrk's own duration would include the time it sleeps
-- after every thread has stopped.

local ffi = require("ffi")
ffi.cdef [[
  typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
  int clock_gettime(int clock, bench_timespec *ts);
]]
local timespec = ffi.new("bench_timespec")
local CLOCK_MONOTONIC = 1

function now_us()
  ffi.C.clock_gettime(CLOCK_MONOTONIC, timespec)
  return tonumber(timespec.tv_sec) * 1e6 + tonumber(timespec.tv_nsec) / 1e3
end

local threads = {}

function setup(thread)
  thread:set("thread_index", #threads)
  table.insert(threads, thread)
end

good, bad, lost, answered = 0, 0, 0, 0
first_us, last_us = 0, 0

function stop_thread()
  io.open(BENCH.stop_dir .. "/" .. thread_index, "w"):close()
  wrk.thread:stop()
end

function started()
  if first_us == 0 then first_us = now_us() end
end

-- One answer: ok true/false; "lost" is a scenario's own kind of failure.
function count(outcome)
  answered = answered + 1
  last_us = now_us()
  if outcome == true then good = good + 1
  elseif outcome == "lost" then lost = lost + 1
  else bad = bad + 1 end
  if answered >= BENCH.cap_per_thread then stop_thread() end
end

function done(summary, latency, requests)
  local totals = { good = 0, bad = 0, lost = 0, answered = 0 }
  local first, last = math.huge, 0
  for _, thread in ipairs(threads) do
    for name, _ in pairs(totals) do totals[name] = totals[name] + thread:get(name) end
    if thread:get("first_us") > 0 then first = math.min(first, thread:get("first_us")) end
    last = math.max(last, thread:get("last_us"))
  end
  local errors = summary.errors
  io.write(string.format(
    'BENCH_RESULT {"good": %d, "bad": %d, "lost": %d, "answered": %d, "seconds": %.6f, ' ..
    '"socket_errors": %d, "p50_ms": %.3f, "p90_ms": %.3f, "p99_ms": %.3f, "max_ms": %.3f}\n',
    totals.good, totals.bad, totals.lost, totals.answered, math.max(last - first, 1) / 1e6,
    errors.connect + errors.read + errors.write + errors.timeout,
    latency:percentile(50) / 1e3, latency:percentile(90) / 1e3, latency:percentile(99) / 1e3, latency.max / 1e3))
end
