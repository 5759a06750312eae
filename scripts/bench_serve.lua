-- wrk script for scripts/bench_serve: POSTs signed IMMUNE webhooks, cycling through a file of
-- "<signature> <body>" lines (each wrk thread starts at its own offset, so ids differ).
-- Requests are formatted once, up front: wrk shares the cores with the server, so the load
-- generator's own work per request is kept to handing over a ready string.
local requests, n, i = {}, 0, 0
local threads = 0

function setup(thread)
  thread:set("tid", threads)
  threads = threads + 1
end

function init(args)
  for line in io.lines(args[1]) do
    local sep = line:find(" ", 1, true)
    n = n + 1
    requests[n] = wrk.format("POST", nil, { ["Content-Type"] = "application/json", ["x-immune-signature"] = line:sub(1, sep - 1) },
                             line:sub(sep + 1))
  end
  i = (tid or 0) * math.floor(n / 4)
end

function request()
  i = i % n + 1
  return requests[i]
end
