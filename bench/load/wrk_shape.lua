-- One request shape, byte for byte: requests/<BENCH_SHAPE>.http next to this script (or the
-- file named by BENCH_REQUEST), with @HOST@ replaced by wrk's Host (from the URL) and
-- @LENGTH@ by the body's length; LF line ends become CRLF. The result is wrk_report.lua's
-- JSON line.
--
--   BENCH_SHAPE=browser wrk -c64 -d10s -s bench/load/wrk_shape.lua http://127.0.0.1:8080/
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(dir .. "wrk_report.lua")

local function read(path)
  local f = assert(io.open(path, "rb"), "wrk_shape.lua: cannot open " .. path)
  local text = f:read("*a")
  f:close()
  return text
end

local function plain(s)  -- a gsub replacement that is taken literally
  return (s:gsub("%%", "%%%%"))
end

local function render(text, host)
  text = text:gsub("\r\n", "\n")
  local cut = assert(text:find("\n\n", 1, true), "wrk_shape.lua: no blank line after the headers")
  local head, body = text:sub(1, cut - 1), text:sub(cut + 2):gsub("\n$", "")
  head = head:gsub("@HOST@", plain(host)):gsub("@LENGTH@", tostring(#body)):gsub("\n", "\r\n")
  return head .. "\r\n\r\n" .. body
end

-- wrk.init builds each thread's request once, with wrk.format(). Replacing that function
-- (instead of defining request()) keeps the request static, so wrk runs no Lua per request
-- and is no slower than with its own bare GET, and keeps the header order exactly as written
-- (wrk.format walks a Lua table: its order is arbitrary). An error here stops wrk: it never
-- falls back to its default request.
wrk.format = function()
  local path = os.getenv("BENCH_REQUEST")
    or (dir .. "requests/" .. (os.getenv("BENCH_SHAPE") or "bare") .. ".http")
  return render(read(path), wrk.headers["Host"])
end
