-- wrk script: POST /v1/services/<svc>/deployments spread over SERVICES services, bearer token from env.
local token = os.getenv("BERTH_BENCH_TOKEN")
local image = os.getenv("BERTH_BENCH_IMAGE")
local services = tonumber(os.getenv("BERTH_BENCH_SERVICES") or "10")
local counter = 0
wrk.method = "POST"
wrk.headers["Authorization"] = "Bearer " .. token
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"image":"' .. image .. '"}'

request = function()
  counter = counter + 1
  return wrk.format(nil, "/v1/services/bench-" .. (counter % services) .. "/deployments")
end

done = function(summary, latency, requests)
  io.write(string.format("JSON{\"requests\":%d,\"errors\":%d,\"non2xx\":%d}\n", summary.requests,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout, summary.errors.status))
end
