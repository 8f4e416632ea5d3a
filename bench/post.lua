-- wrk: every request is the same invocation, POST with a small JSON payload.
wrk.method = "POST"
wrk.body = '{"name": "bench"}'
wrk.headers["Content-Type"] = "application/json"
