import type { Cluster, Redis } from 'ioredis';

/**
 * History of history topics in Redis (CONTRACT section 11), shared by every instance.
 *
 * Per topic, two keys with the same hash tag (in a Redis Cluster `<prefix>{<tag>}<topic>:m` and
 * `:h` instead, on the slot of the topic's channel: slot-tags.ts):
 * - `<prefix>{<topic>}:m`, a hash: `e` the epoch, `o` the last offset given out;
 * - `<prefix>{<topic>}:h`, a stream of the last `size` stamped messages, entry id
 *   `<offset>-<Redis time in ms when appended>`, one field `d` (the stamped payload). (Entries
 *   written before this format have id `<offset>-0` and the time in a field `t`; both are read.)
 * Both expire `ttlMs` after the last append. The epoch is made by the script when the hash is
 * missing (Redis restarted empty, the key expired or was evicted): Redis time in microseconds
 * plus the calling instance's nonce, and the old stream is deleted with it, so an old offset
 * never points into a new sequence. Offsets are counted inside the script that appends
 * and publishes, so history order is delivery order on every instance, and no two messages of
 * one epoch share an offset.
 */

/**
 * The Lua both history batches share (numbering, stamping, keeping, publishing one history
 * message; writing each topic back): `topicJson` is where a topic's JSON text is in ARGV, `keys`
 * where its stream and meta keys are, `command` the publish.
 */
const historyLua = {
  prelude: `local expected = tonumber(ARGV[1])
local size = ARGV[2]
local ttl = ARGV[3]
local topicCount = tonumber(ARGV[5])
local now = redis.call('TIME')
local nowMs = now[1] * 1000 + math.floor(now[2] / 1000)
local fresh = string.format('%x%05x', now[1], now[2]) .. ARGV[4]
local out = {}
local epochs, offsets, stamps = {}, {}, {}`,
  /** The body of `historic(i, j, channel, tail, ...)` after its `stream, meta` are known, up to the counted offset. */
  numberKeepPublish: (topicJson: string, command: 'PUBLISH' | 'SPUBLISH'): string => `  local offset = offsets[j]
  if offset == nil then
    local state = redis.call('HMGET', meta, 'e', 'o')
    if not state[1] then
      epochs[j] = fresh .. '.' .. i
      redis.call('DEL', stream)
      redis.call('HSET', meta, 'e', epochs[j], 'o', 0)
      offset = 0
    else
      epochs[j] = state[1]
      offset = tonumber(state[2]) or 0
    end
    offsets[j] = offset
    stamps[j] = '{"tp":' .. ${topicJson} .. ',"e":"' .. epochs[j] .. '","o":'
  end
  local nextOffset = offset + 1
  -- The tail is the payload after its '{': '}' for an empty object, else its first field on.
  local stamped
  if string.byte(tail, 1) == 125 then
    stamped = stamps[j] .. nextOffset .. tail
  else
    stamped = stamps[j] .. nextOffset .. ',' .. tail
  end
  local added = redis.pcall('XADD', stream, nextOffset .. '-' .. nowMs, 'd', stamped)
  if type(added) == 'table' and added.err then error(added.err) end
  local receivers = redis.pcall('${command}', channel, stamped)
  if type(receivers) == 'table' and receivers.err then
    redis.call('XDEL', stream, added)
    error(receivers.err)
  end
  offsets[j] = nextOffset`,
  /** Each topic's offset written back, its stream trimmed, both keys' expiry set again; then the reply. */
  writeBack: (keys: string): string => `for j, offset in pairs(offsets) do
  local stream, meta = ${keys}
  redis.call('HSET', meta, 'o', offset)
  redis.call('XTRIM', stream, 'MAXLEN', '=', size)
  redis.call('PEXPIRE', stream, ttl)
  redis.call('PEXPIRE', meta, ttl)
end
return out`,
};

/**
 * Publishes a batch in which some messages are on history topics, in order, as one command.
 * KEYS: stream, meta of each history topic of the batch, once per topic. ARGV: expected
 * receivers, size, ttlMs, nonce, the number of history topics, each history topic as JSON text
 * (in the order of KEYS), then three per message: channel, the number of its topic in KEYS'
 * order (0 for a plain message), and the payload (plain) or its tail (history: the payload after
 * its `{`, or `}` alone for an empty object; the script puts the stamp's comma before any other).
 *
 * A history message takes the topic's next offset, is stamped, added to the stream with id
 * `<offset>-<now in ms>`, and the stamped payload is PUBLISHed; a plain one is PUBLISHed as it is. Offsets
 * are counted in the script and written back once per topic, the stream trimmed to `size`
 * (XTRIM MAXLEN =) and `ttlMs` set again on both keys, after the last message: a message costs
 * one XADD and one PUBLISH (the per-message HINCRBY, PEXPIREs and trimming made Redis the
 * bottleneck of history topics), and a topic's keys and JSON travel once per batch.
 * Each message runs under pcall, and a history message refused at any step is undone (its
 * stream entry deleted, its offset not counted), so a refused message left no trace and a retry
 * cannot make two offsets for one message.
 *
 * The reply is the plain publish batch's (publish-batch.ts): flat pairs, (index, error) for a
 * refused message and (-index, receivers) for one that reached fewer subscribers than
 * expected, 1-based; empty when every message reached everyone.
 */
const PUBLISH_HISTORY_BATCH_LUA = `${historyLua.prelude}
-- Per topic (its number j in KEYS' order), once per call: its epoch and offset are read on its
-- first message, counted here, and written back (with the trim and the keys' expiry) after the
-- last. A message refused at either step leaves no trace: its stream entry is deleted and its
-- offset never counted. The call runs atomically, so nobody sees the counting in between.
local function historic(i, j, channel, tail)
  local stream, meta = KEYS[2 * j - 1], KEYS[2 * j]
${historyLua.numberKeepPublish('ARGV[5 + j]', 'PUBLISH')}
  return receivers
end
local first = 6 + topicCount
for i = 1, (#ARGV - first + 1) / 3 do
  local at = first + 3 * (i - 1)
  local channel = ARGV[at]
  local j = tonumber(ARGV[at + 1])
  local body = ARGV[at + 2]
  local ok, receivers
  if j == 0 then
    receivers = redis.pcall('PUBLISH', channel, body)
    ok = not (type(receivers) == 'table' and receivers.err)
    if not ok then receivers = receivers.err end
  else
    ok, receivers = pcall(historic, i, j, channel, body)
    if not ok and type(receivers) == 'table' then receivers = receivers.err end
  end
  if not ok then
    out[#out + 1] = i
    out[#out + 1] = tostring(receivers)
  elseif receivers < expected then
    out[#out + 1] = -i
    out[#out + 1] = receivers
  end
end
${historyLua.writeBack('KEYS[2 * j - 1], KEYS[2 * j]')}`;

/**
 * The history batch on one master of a Redis Cluster: the script above, with the topics' keys in
 * the arguments and SPUBLISH instead of PUBLISH. A topic's keys are on its channel's slot
 * (slot-tags.ts), so a message's keys and channel are on one master; the messages of one call
 * are on several slots of that master, which a script may touch when it says so
 * (`allow-cross-slot-keys`, Redis 7) and only on slots this node serves. Redis takes declared
 * keys of one slot only, so the one declared key is the first message's channel (ioredis routes
 * the call by it); a message whose slot is not on this node fails alone inside the script ("non
 * local key") and leaves no trace, to be sent again by itself.
 *
 * ARGV: expected receivers, size, ttlMs, nonce, the number of history topics, three per topic
 * (its JSON text, its stream and meta keys), then four per message: channel, the number of its
 * topic (0 for a plain message), the payload (plain) or its tail (history, as above), and `1`
 * when the message also goes on the classic bus (a glob follows its topic somewhere: a PUBLISH
 * on a cluster node reaches every node's subscribers), empty otherwise. The classic copy carries
 * the same stamped payload; when only the copy is refused the message is reported as reaching -1
 * receivers (short). Reply as the standalone batch's.
 */
const CLUSTER_PUBLISH_HISTORY_BATCH_LUA = `#!lua flags=allow-cross-slot-keys
${historyLua.prelude}
local function copied(channel, payload, classic, receivers)
  if classic == '' then return receivers end
  local reply = redis.pcall('PUBLISH', channel, payload)
  if type(reply) == 'table' and reply.err then return -1 end
  return receivers
end
local function historic(i, j, channel, tail, classic)
  local stream, meta = ARGV[4 + 3 * j], ARGV[5 + 3 * j]
${historyLua.numberKeepPublish('ARGV[3 + 3 * j]', 'SPUBLISH')}
  return copied(channel, stamped, classic, receivers)
end
local first = 6 + 3 * topicCount
for i = 1, (#ARGV - first + 1) / 4 do
  local at = first + 4 * (i - 1)
  local channel = ARGV[at]
  local j = tonumber(ARGV[at + 1])
  local body = ARGV[at + 2]
  local classic = ARGV[at + 3]
  local ok, receivers
  if j == 0 then
    receivers = redis.pcall('SPUBLISH', channel, body)
    ok = not (type(receivers) == 'table' and receivers.err)
    if not ok then receivers = receivers.err else receivers = copied(channel, body, classic, receivers) end
  else
    ok, receivers = pcall(historic, i, j, channel, body, classic)
    if not ok and type(receivers) == 'table' then receivers = receivers.err end
  end
  if not ok then
    out[#out + 1] = i
    out[#out + 1] = tostring(receivers)
  elseif receivers < expected then
    out[#out + 1] = -i
    out[#out + 1] = receivers
  end
end
${historyLua.writeBack('ARGV[4 + 3 * j], ARGV[5 + 3 * j]')}`;

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
  -- When it was appended: the entry id's sequence part, or its field t (the format before).
  local fields = entries[i][2]
  local at = tonumber(string.match(entries[i][1], '-(%d+)$'))
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

/** The batch reply, as publish-batch.ts's: (index, error) and (-index, receivers) pairs, 1-based. */
export type HistoryBatchReply = readonly (number | string)[];

/** A connection with the history commands defined on it. */
export interface HistoryCommands extends Redis {
  /**
   * The number of keys, the keys (stream, meta of each history topic), then expected receivers,
   * size, ttlMs, nonce, the number of history topics, their JSON, and channel, topic number (0:
   * plain), payload or tail of each message.
   */
  wsePublishHistoryBatch(...numKeysKeysAndArgs: (string | number | Buffer)[]): Promise<HistoryBatchReply>;
  /** Keys: stream, meta; arguments: ttlMs, nonce, since, epoch, maxReplay. */
  wseHistoryRead(...keysAndArgs: (string | number)[]): Promise<(string | number)[]>;
}

/** Defines the history commands on `redis` (EVALSHA, falling back to EVAL after a restart). */
export function defineHistoryCommands(redis: Redis): asserts redis is HistoryCommands {
  redis.defineCommand('wsePublishHistoryBatch', { lua: PUBLISH_HISTORY_BATCH_LUA });
  redis.defineCommand('wseHistoryRead', { numberOfKeys: 2, lua: READ_LUA });
}

/** The history commands on a cluster's client (see `defineClusterHistoryCommands`). */
export interface ClusterHistoryCommands extends Cluster {
  /** Key: the first message's channel; then expected receivers, size, ttlMs, nonce, the topics, four per message. */
  wseClusterHistoryBatch(firstChannel: string, ...args: (string | number | Buffer)[]): Promise<HistoryBatchReply>;
  /** As `HistoryCommands.wseHistoryRead`, routed by the stream key's slot. */
  wseHistoryRead(...keysAndArgs: (string | number)[]): Promise<(string | number)[]>;
}

/** Defines the cluster's history commands on its client (ioredis routes each by its first key). */
export function defineClusterHistoryCommands(cluster: Cluster): asserts cluster is ClusterHistoryCommands {
  cluster.defineCommand('wseClusterHistoryBatch', { numberOfKeys: 1, lua: CLUSTER_PUBLISH_HISTORY_BATCH_LUA });
  cluster.defineCommand('wseHistoryRead', { numberOfKeys: 2, lua: READ_LUA });
}

/** The two keys of a topic's history (standalone Redis; a cluster's are in slot-tags.ts). */
export function historyKeys(prefix: string, topic: string): { stream: string; meta: string } {
  return { stream: `${prefix}{${topic}}:h`, meta: `${prefix}{${topic}}:m` };
}
