-- wrk script for scripts/load-portal.sh: one signed-in portal request, replayed.
-- PORTAL_METHOD, PORTAL_PATH, PORTAL_COOKIE and PORTAL_BODY come from the environment.
wrk.method = os.getenv("PORTAL_METHOD") or "GET"
wrk.path = os.getenv("PORTAL_PATH") or "/start"
wrk.headers["Cookie"] = os.getenv("PORTAL_COOKIE")
local body = os.getenv("PORTAL_BODY")
if body and body ~= "" then
  wrk.body = body
  wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
end

function done(summary, latency, requests)
  local seconds = summary.duration / 1e6
  local socket = summary.errors.connect + summary.errors.read + summary.errors.write
    + summary.errors.timeout
  io.write(string.format("RESULT %d %.1f %.3f %.3f %.3f %d %d\n", summary.requests,
    summary.requests / seconds, latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    latency.mean / 1000, summary.errors.status, socket))
end
