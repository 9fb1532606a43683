-- Argo CD health check for polar.sh/CheckoutLink, under the argocd-cm key
-- resource.customizations.health.polar.sh_CheckoutLink. gitops/argocd/argocd-cm.yaml embeds
-- this file; tests/gitops_health.rs checks that the copies are equal.
--
-- The operator writes kstatus-style conditions (Ready, Reconciling, Stalled), Synced,
-- Sellable and status.observedGeneration (src/reconcile/status.rs, sellable.rs):
--   Healthy      Ready=True, for the object's current metadata.generation, and the link can
--                sell (Sellable is not False)
--   Degraded     Stalled=True, or Ready=False with a reason only a change to the spec or the
--                credentials Secret fixes, or Sellable=False (archived or draft products, a
--                preset discount not started, ended or used up); the message is the
--                operator's, with Polar's words
--   Progressing  everything else: no status yet, a status for an older generation,
--                Reconciling=True (creating, updating, retrying after a 429 or a 5xx),
--                the resource being deleted
--
-- Argo CD runs this with gopher-lua (Lua 5.1) and, for argocd-cm scripts, only the base, table
-- and package libraries: no string.*, no goto, no integer division.

local hs = {}

-- Reasons of Ready=False that retrying cannot fix (src/reconcile/status.rs, Phase::Stalled).
local terminal = {
  InvalidSpec = true,
  ProductArchived = true,
  ProductUnavailable = true,
  AdoptionFailed = true,
  OwnershipConflict = true,
  CredentialsMissing = true,
  CredentialsInvalid = true,
  OrganizationMismatch = true,
  ApiVersionRefused = true,
  PolarUnexpected = true,
  DeletionUnverified = true,
}

local function condition(status, kind)
  if status == nil or status.conditions == nil then
    return nil
  end
  for _, c in ipairs(status.conditions) do
    if c.type == kind then
      return c
    end
  end
  return nil
end

-- The condition's message, or its reason when the message is empty.
local function says(c, fallback)
  if c ~= nil and c.message ~= nil and c.message ~= "" then
    return c.message
  end
  if c ~= nil and c.reason ~= nil and c.reason ~= "" then
    return c.reason
  end
  return fallback
end

local generation = obj.metadata.generation
local status = obj.status
local ready = condition(status, "Ready")
local reconciling = condition(status, "Reconciling")
local stalled = condition(status, "Stalled")
local sellable = condition(status, "Sellable")

if obj.metadata.deletionTimestamp ~= nil then
  hs.status = "Progressing"
  hs.message = "Deleting the Polar checkout link"
  if stalled ~= nil and stalled.status == "True" then
    hs.message = hs.message .. ": " .. says(stalled, "stalled")
  elseif reconciling ~= nil and reconciling.status == "True" then
    hs.message = hs.message .. ": " .. says(reconciling, "retrying")
  end
  return hs
end

if status == nil or ready == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to report on the checkout link"
  return hs
end

-- The status describes the current spec only when every observedGeneration it carries equals
-- metadata.generation (and it carries at least one).
local observed = status.observedGeneration
if observed == nil then
  observed = ready.observedGeneration
end
if generation == nil or observed ~= generation
    or (ready.observedGeneration ~= nil and ready.observedGeneration ~= generation) then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to observe generation " .. tostring(generation)
    .. " (the status describes generation " .. tostring(observed) .. ")"
  return hs
end

if stalled ~= nil and stalled.status == "True" then
  hs.status = "Degraded"
  hs.message = says(stalled, "Stalled")
  return hs
end

if ready.status == "False" and terminal[ready.reason] then
  hs.status = "Degraded"
  hs.message = says(ready, ready.reason)
  return hs
end

if reconciling ~= nil and reconciling.status == "True" then
  hs.status = "Progressing"
  hs.message = says(reconciling, "Reconciling")
  return hs
end

if ready.status == "True" and sellable ~= nil and sellable.status == "False" then
  hs.status = "Degraded"
  hs.message = says(sellable, "The checkout link cannot sell")
  return hs
end

if ready.status == "True" then
  hs.status = "Healthy"
  hs.message = says(ready, "Ready")
  return hs
end

hs.status = "Progressing"
hs.message = says(ready, "Not ready yet")
return hs
