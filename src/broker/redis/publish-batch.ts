import type { Redis } from 'ioredis';

/**
 * Many PUBLISHes in one command. The script runs `PUBLISH ARGV[2] ARGV[3]`, `PUBLISH ARGV[4]
 * ARGV[5]`, ... in order inside Redis, so every subscriber (other instances, plain `SUBSCRIBE`
 * clients) gets the same messages in the same order as from separate PUBLISHes, and MONITOR and
 * INFO commandstats still show one PUBLISH per message.
 *
 * Each PUBLISH runs under `pcall`: one refused message (an ACL that allows only some channels)
 * neither stops the others nor fails the whole command, so a retry never repeats a message that
 * went out. `ARGV[1]` is how many subscribers each message must reach (the live instances); the
 * reply lists only the exceptions, as flat pairs: (index, error) for a refused message and
 * (-index, receivers) for one that reached fewer subscribers (1-based indexes). An empty reply
 * means all went out to everyone, which keeps the common reply tiny.
 *
 * Declared without flags on purpose: `#!lua flags=no-writes` would refuse PUBLISH, and a script
 * without flags runs under `maxmemory` pressure and on replicas exactly like PUBLISH does.
 * Redis runs a script atomically: the caps below keep each run short (about a millisecond).
 *
 * `command` is `PUBLISH` here and `SPUBLISH` for one master of a cluster (sharded-batch.ts).
 */
export function batchLua(command: 'PUBLISH' | 'SPUBLISH'): string {
  return `local expected = tonumber(ARGV[1])
local out = {}
for i = 2, #ARGV, 2 do
  local reply = redis.pcall('${command}', ARGV[i], ARGV[i + 1])
  if type(reply) == 'table' and reply.err then
    out[#out + 1] = i / 2
    out[#out + 1] = reply.err
  elseif reply < expected then
    out[#out + 1] = -(i / 2)
    out[#out + 1] = reply
  end
end
return out`;
}

const PUBLISH_BATCH_LUA = batchLua('PUBLISH');

/** At most this many messages per command. */
export const MAX_BATCH_MESSAGES = 512;
/**
 * A command is closed once its payloads reach this size (bytes, or characters of text); a larger
 * single message still goes, alone.
 */
export const MAX_BATCH_BYTES = 1024 * 1024;

/**
 * The batch reply: flat pairs, (1-based index, error text) for a message Redis refused and
 * (-(1-based index), receivers) for one that reached fewer subscribers than expected.
 */
export type BatchReply = readonly (number | string)[];
export const ALL_DELIVERED: BatchReply = Object.freeze([]);

/** A publisher connection with the batch command defined on it. */
export interface BatchPublisher extends Redis {
  /** Arguments: expected receivers, then channel, payload, channel, payload, ... */
  wsePublishBatch(expected: number, ...channelsAndPayloads: (string | Buffer)[]): Promise<BatchReply>;
}

/**
 * The same batch without the script, for a Redis that refuses to run scripts (an ACL without
 * EVAL, scripting renamed away): one pipeline of PUBLISHes, one write, the same reply shape.
 * Costs the client one command per message, so it is the fallback, not the rule.
 */
export async function publishPipelined(
  redis: Redis,
  expected: number,
  channelsAndPayloads: readonly (string | Buffer)[],
): Promise<BatchReply> {
  const pipeline = redis.pipeline();
  for (let i = 0; i < channelsAndPayloads.length; i += 2)
    pipeline.publish(channelsAndPayloads[i], channelsAndPayloads[i + 1]);
  const results = (await pipeline.exec()) ?? [];
  const reply: (number | string)[] = [];
  results.forEach(([error, receivers], i) => {
    if (error !== null) reply.push(i + 1, error.message);
    else if (Number(receivers) < expected) reply.push(-(i + 1), Number(receivers));
  });
  return reply;
}

/** True when Redis refused the batch script itself (not a PUBLISH inside it). */
export function isScriptRefused(error: unknown): boolean {
  return error instanceof Error && /^(NOPERM|ERR unknown command)\b.*\b(eval|evalsha)\b/i.test(error.message);
}

/**
 * Defines `wsePublishBatch` on `redis`. ioredis sends it as EVALSHA and falls back to EVAL
 * (which loads the script) on the first use of each connection and after a Redis restart.
 */
export function definePublishBatch(redis: Redis): asserts redis is BatchPublisher {
  redis.defineCommand('wsePublishBatch', { numberOfKeys: 0, lua: PUBLISH_BATCH_LUA });
}
