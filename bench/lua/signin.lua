-- Sign-in through the login form, as in production (Argon2): GET the form
-- for its CSRF cookie and token, POST the username and password, expect 302.

local step, csrf_cookie, csrf = "form", nil, nil

function request()
  started()
  if step == "form" then
    return wrk.format("GET", "/accounts/login/", { Connection = "close" })
  end
  local body = "username=" .. BENCH.username .. "&password=" .. BENCH.password .. "&csrfmiddlewaretoken=" .. csrf
  return wrk.format("POST", "/accounts/login/", {
    Connection = "close",
    Cookie = csrf_cookie,
    ["Content-Type"] = "application/x-www-form-urlencoded",
  }, body)
end

function response(status, headers, body)
  if step == "form" then
    csrf_cookie = (headers["Set-Cookie"] or ""):match("(csrftoken=[^;]+)")
    csrf = body:match('name="csrfmiddlewaretoken" value="([^"]+)"')
    if status == 200 and csrf_cookie and csrf then
      step = "post"
      answered = answered + 1
    else
      count(false)
    end
    return
  end
  step = "form"
  count(status == 302)
end
