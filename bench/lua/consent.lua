-- One consent approval per turn, as a browser does it: GET the consent page
-- (signed in, BENCH.cookie), read the request id and CSRF token from it, POST
-- Allow. One connection per thread, so each thread is one flow in progress;
-- every thread uses the same session. An approval is lost when the POST is
-- not a 302 to the redirect_uri with a code.

local step, rid, csrf = "page", nil, nil

function request()
  started()
  local headers = { Cookie = BENCH.cookie, Connection = "close" }
  if step == "page" then
    return wrk.format("GET", BENCH.consent_path, headers)
  end
  headers["Content-Type"] = "application/x-www-form-urlencoded"
  local body = "request=" .. rid .. "&decision=allow&key=" .. BENCH.key_choice .. "&csrfmiddlewaretoken=" .. csrf
  return wrk.format("POST", "/getKeys/authorize", headers, body)
end

function response(status, headers, body)
  if step == "page" then
    rid = body:match('name="request" value="([^"]+)"')
    csrf = body:match('name="csrfmiddlewaretoken" value="([^"]+)"')
    if status == 200 and rid and csrf then
      step = "decide"
      answered = answered + 1 -- pages are counted by the cap, approvals by count()
    else
      count(false)
    end
    return
  end
  step = "page"
  local location = headers["Location"] or headers["location"] or ""
  local approved = status == 302 and location:sub(1, #BENCH.approved_prefix) == BENCH.approved_prefix
  count(approved or "lost")
end
