import type { Redis } from 'ioredis';

/**
 * History of history topics in Redis (CONTRACT section 11), shared by every instance.
 *
 * Per topic, two keys with the same hash tag (so one script may touch both in a cluster too):
 * - `<prefix>{<topic>}:m`, a hash: `e` the epoch, `o` the last offset given out;
 * - `<prefix>{<topic>}:h`, a stream of the last `size` stamped messages, entry id `<offset>-0`,
 *   fields `t` (Redis time in ms when appended) and `d` (the stamped payload).
 * Both expire `ttlMs` after the last append. The epoch is made by the script when the hash is
 * missing (Redis restarted empty, the key expired or was evicted): Redis time in microseconds
 * plus the calling instance's nonce, and the old stream is deleted with it, so an old offset
 * never points into a new sequence. Offsets come from HINCRBY inside the script that appends
 * and publishes, so history order is delivery order on every instance, and no two messages of
 * one epoch share an offset.
 */

/**
 * Appends and publishes a batch. KEYS: stream, meta for each message. ARGV: size, ttlMs, nonce,
 * then channel, topic as JSON text, tail for each message (the payload after its `{`, with a
 * leading comma unless the object is empty). Each message runs under pcall, so one refused
 * message neither stops the others nor fails the command; the reply lists only the refused
 * ones as (1-based index, error) pairs, as the plain publish batch does.
 */
const APPEND_LUA = `local size = ARGV[1]
local ttl = ARGV[2]
local nonce = ARGV[3]
local now = redis.call('TIME')
local nowMs = now[1] * 1000 + math.floor(now[2] / 1000)
local fresh = string.format('%x%05x', now[1], now[2]) .. nonce
local refused = {}
local function append(i)
  local stream = KEYS[2 * i - 1]
  local meta = KEYS[2 * i]
  local channel = ARGV[1 + 3 * i]
  local topicJson = ARGV[2 + 3 * i]
  local tail = ARGV[3 + 3 * i]
  local epoch = redis.call('HGET', meta, 'e')
  if not epoch then
    epoch = fresh .. '.' .. i
    redis.call('DEL', stream)
    redis.call('HSET', meta, 'e', epoch, 'o', 0)
  end
  local offset = redis.call('HINCRBY', meta, 'o', 1)
  local stamped = '{"tp":' .. topicJson .. ',"e":"' .. epoch .. '","o":' .. offset .. tail
  redis.call('XADD', stream, 'MAXLEN', '=', size, offset .. '-0', 't', nowMs, 'd', stamped)
  redis.call('PEXPIRE', stream, ttl)
  redis.call('PEXPIRE', meta, ttl)
  redis.call('PUBLISH', channel, stamped)
end
for i = 1, #KEYS / 2 do
  local ok, err = pcall(append, i)
  if not ok then
    refused[#refused + 1] = i
    refused[#refused + 1] = type(err) == 'table' and err.err or tostring(err)
  end
end
return refused`;

/**
 * Reads a topic's position and, when `since` >= 0, the messages after it. KEYS: stream, meta.
 * ARGV: ttlMs, nonce, since (-1: position only), the client's epoch, maxReplay. Starts the
 * topic's history when it has none (as appending would), so a position handed out stays valid.
 * Reply: epoch, offset, heldFrom, then the stamped payloads after `since` when all of them are
 * held (heldFrom = since + 1) and not more than maxReplay; heldFrom is the oldest unexpired
 * offset held, or offset + 1 when none is.
 */
const READ_LUA = `local ttl = tonumber(ARGV[1])
local since = tonumber(ARGV[3])
local now = redis.call('TIME')
local nowMs = now[1] * 1000 + math.floor(now[2] / 1000)
local epoch = redis.call('HGET', KEYS[2], 'e')
local offset = 0
if not epoch then
  epoch = string.format('%x%05x', now[1], now[2]) .. ARGV[2] .. '.r'
  redis.call('DEL', KEYS[1])
  redis.call('HSET', KEYS[2], 'e', epoch, 'o', 0)
  redis.call('PEXPIRE', KEYS[2], ttl)
else
  offset = tonumber(redis.call('HGET', KEYS[2], 'o'))
end
local reply = { epoch, offset, offset + 1 }
if since < 0 or epoch ~= ARGV[4] or since >= offset or offset - since > tonumber(ARGV[5]) then
  return reply
end
local entries = redis.call('XRANGE', KEYS[1], (since + 1) .. '-0', '+', 'COUNT', offset - since)
local expiredBefore = nowMs - ttl
local first = nil
for i = 1, #entries do
  local fields = entries[i][2]
  local at = 0
  for f = 1, #fields, 2 do
    if fields[f] == 't' then at = tonumber(fields[f + 1]) end
  end
  if at > expiredBefore then
    first = i
    break
  end
end
if first == nil then return reply end
reply[3] = tonumber(string.match(entries[first][1], '^(%d+)'))
if reply[3] ~= since + 1 then return reply end
for i = first, #entries do
  local fields = entries[i][2]
  for f = 1, #fields, 2 do
    if fields[f] == 'd' then reply[#reply + 1] = fields[f + 1] end
  end
end
return reply`;

/** The append script's reply: (1-based message index, error text) pairs of refused messages. */
export type AppendRefusals = readonly (number | string)[];

/** A connection with the history commands defined on it. */
export interface HistoryCommands extends Redis {
  /** The number of keys, the keys (stream, meta, ...), then size, ttlMs, nonce, and channel, topic JSON, tail, ... */
  wseHistoryAppend(...numKeysKeysAndArgs: (string | number | Buffer)[]): Promise<AppendRefusals>;
  /** Keys: stream, meta; arguments: ttlMs, nonce, since, epoch, maxReplay. Buffers for the payloads. */
  wseHistoryReadBuffer(...keysAndArgs: (string | number)[]): Promise<Buffer[]>;
}

/** Defines the history commands on `redis` (EVALSHA, falling back to EVAL after a restart). */
export function defineHistoryCommands(redis: Redis): asserts redis is HistoryCommands {
  redis.defineCommand('wseHistoryAppend', { lua: APPEND_LUA });
  redis.defineCommand('wseHistoryRead', { numberOfKeys: 2, lua: READ_LUA });
}

/** The two keys of a topic's history. */
export function historyKeys(prefix: string, topic: string): { stream: string; meta: string } {
  return { stream: `${prefix}{${topic}}:h`, meta: `${prefix}{${topic}}:m` };
}
