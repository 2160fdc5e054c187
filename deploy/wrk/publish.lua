-- wrk script for deploy/bench.sh: POST /v1/topics/T/messages over keep-alive
-- connections. SLUICE_BATCH=1 sends one SLUICE_SIZE-byte message per request
-- (application/octet-stream); SLUICE_BATCH=N > 1 sends N such messages per
-- request as NDJSON lines (application/x-ndjson, one PublishBatch).
-- SLUICE_TOKEN=T sends Authorization: Bearer T (a node with [auth] enabled).
-- done() prints one JSON line: requests, messages, seconds, errors, latency.
local size = tonumber(os.getenv("SLUICE_SIZE") or "100")
local batch = tonumber(os.getenv("SLUICE_BATCH") or "1")
wrk.method = "POST"
local token = os.getenv("SLUICE_TOKEN")
if token and token ~= "" then
    wrk.headers["Authorization"] = "Bearer " .. token
end
if batch == 1 then
    wrk.body = string.rep("x", size)
    wrk.headers["Content-Type"] = "application/octet-stream"
else
    local line = '{"payload":"' .. string.rep("x", size) .. '"}\n'
    wrk.body = string.rep(line, batch)
    wrk.headers["Content-Type"] = "application/x-ndjson"
end

function done(summary, latency, requests)
    local e = summary.errors
    io.write(string.format(
        '{"requests":%d,"messages":%d,"seconds":%.3f,"errors":%d,"non_2xx":%d,"p50_ms":%.3f,"p99_ms":%.3f}\n',
        summary.requests, summary.requests * batch, summary.duration / 1e6,
        e.connect + e.read + e.write + e.timeout, e.status,
        latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
