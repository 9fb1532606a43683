-- Runs an Argo CD health script on Kubernetes objects saved as JSON, the way Argo CD runs a
-- script from argocd-cm, as closely as stock Lua allows:
--   * the object is the global `obj`; JSON nulls are absent fields, numbers without a fraction
--     are integers (Argo CD converts the object client-go decoded, with int64 numbers);
--   * the script sees only the base and table libraries (Argo CD opens base, table, package
--     and a safe subset of os for argocd-cm scripts): no string, math, io, os or debug, and
--     no string methods ("x"):upper();
--   * it must return a table with a valid health status.
--
--   lua5.4 gitops/argocd/run.lua gitops/argocd/health.lua OBJECT.json...
--
-- Prints one JSON line per object: {"file": ..., "status": ..., "message": ...}. Needs the
-- cjson module (Debian package lua-cjson; hack/ensure-lua.sh installs it).
local cjson = require("cjson")

local function fail(message)
  io.stderr:write("run.lua: " .. message .. "\n")
  os.exit(1)
end

local function read(path)
  local f, err = io.open(path, "rb")
  if f == nil then
    fail(err)
  end
  local text = f:read("a")
  f:close()
  return text
end

-- JSON as Argo CD hands it to Lua: no nulls, integral numbers as integers.
local function argo_value(v)
  if v == cjson.null then
    return nil
  end
  if type(v) == "number" and math.tointeger ~= nil then
    return math.tointeger(v) or v
  end
  if type(v) == "table" then
    local out = {}
    for k, item in pairs(v) do
      out[k] = argo_value(item)
    end
    return out
  end
  return v
end

local base = {
  "assert", "error", "getmetatable", "ipairs", "next", "pairs", "pcall", "print", "rawequal",
  "rawget", "rawlen", "rawset", "select", "setmetatable", "tonumber", "tostring", "type",
  "xpcall", "_VERSION",
}

local function sandbox(object)
  local env = { obj = object, table = {}, unpack = table.unpack }
  for _, name in ipairs(base) do
    env[name] = _G[name]
  end
  for name, f in pairs(table) do
    env.table[name] = f
  end
  env._G = env
  return env
end

local valid = {
  Healthy = true, Progressing = true, Degraded = true, Suspended = true, Missing = true,
  Unknown = true,
}

local script_path = arg[1]
if script_path == nil or arg[2] == nil then
  fail("usage: lua5.4 run.lua HEALTH.lua OBJECT.json...")
end
local script = read(script_path)
local string_meta = getmetatable("")

for i = 2, #arg do
  local object = argo_value(cjson.decode(read(arg[i])))
  local chunk, err = load(script, "@" .. script_path, "t", sandbox(object))
  if chunk == nil then
    fail(err)
  end
  -- Without Argo CD's string library, strings have no methods either.
  local string_index = string_meta.__index
  string_meta.__index = nil
  local ok, result = pcall(chunk)
  string_meta.__index = string_index
  if not ok then
    fail(arg[i] .. ": " .. tostring(result))
  end
  if type(result) ~= "table" then
    fail(arg[i] .. ": the script returned " .. type(result) .. ", not a table")
  end
  if not valid[result.status] then
    fail(arg[i] .. ": invalid health status " .. tostring(result.status))
  end
  if result.message ~= nil and type(result.message) ~= "string" then
    fail(arg[i] .. ": the message is a " .. type(result.message))
  end
  print(cjson.encode({ file = arg[i], status = result.status, message = result.message or "" }))
end
