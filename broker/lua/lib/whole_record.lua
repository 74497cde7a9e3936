-- whole(fields): whether a delivery record's fields (HGETALL) make one: version 0.1 could
-- leave the remains of one (its attempt count) after its endpoint was removed.
local function whole(fields)
  for i = 1, #fields, 2 do
    if fields[i] == 'kind' then
      return true
    end
  end
  return false
end
