import type { Redis } from 'ioredis';

/**
 * Many PUBLISHes in one command. The script runs `PUBLISH ARGV[1] ARGV[2]`, `PUBLISH ARGV[3]
 * ARGV[4]`, ... in order inside Redis, so every subscriber (other instances, plain `SUBSCRIBE`
 * clients) gets the same messages in the same order as from separate PUBLISHes, and MONITOR and
 * INFO commandstats still show one PUBLISH per message.
 *
 * Each PUBLISH runs under `pcall`: one refused message (an ACL that allows only some channels)
 * neither stops the others nor fails the whole command, so a retry never repeats a message that
 * went out. The reply lists only the refused ones, as (1-based index, error) pairs; an empty
 * reply means all went out, which keeps the common reply tiny.
 *
 * Declared without flags on purpose: `#!lua flags=no-writes` would refuse PUBLISH, and a script
 * without flags runs under `maxmemory` pressure and on replicas exactly like PUBLISH does.
 * Redis runs a script atomically: the caps below keep each run short (about a millisecond).
 */
const PUBLISH_BATCH_LUA = `local refused = {}
for i = 1, #ARGV, 2 do
  local reply = redis.pcall('PUBLISH', ARGV[i], ARGV[i + 1])
  if type(reply) == 'table' and reply.err then
    refused[#refused + 1] = (i + 1) / 2
    refused[#refused + 1] = reply.err
  end
end
return refused`;

/** At most this many messages per command. */
export const MAX_BATCH_MESSAGES = 512;
/**
 * A command is closed once its payloads reach this size (bytes, or characters of text); a larger
 * single message still goes, alone.
 */
export const MAX_BATCH_BYTES = 1024 * 1024;

/** The script's reply: (1-based message index, error text) pairs of the messages Redis refused. */
export type BatchRefusals = readonly (number | string)[];
export const NO_REFUSALS: BatchRefusals = Object.freeze([]);

/** A publisher connection with the batch command defined on it. */
export interface BatchPublisher extends Redis {
  /** Arguments: channel, payload, channel, payload, ... */
  wsePublishBatch(...channelsAndPayloads: (string | Buffer)[]): Promise<BatchRefusals>;
}

/**
 * The same batch without the script, for a Redis that refuses to run scripts (an ACL without
 * EVAL, scripting renamed away): one pipeline of PUBLISHes, one write, the same reply shape.
 * Costs the client one command per message, so it is the fallback, not the rule.
 */
export async function publishPipelined(
  redis: Redis,
  channelsAndPayloads: readonly (string | Buffer)[],
): Promise<BatchRefusals> {
  const pipeline = redis.pipeline();
  for (let i = 0; i < channelsAndPayloads.length; i += 2)
    pipeline.publish(channelsAndPayloads[i], channelsAndPayloads[i + 1]);
  const results = (await pipeline.exec()) ?? [];
  const refusals: (number | string)[] = [];
  results.forEach(([error], i) => {
    if (error !== null) refusals.push(i + 1, error.message);
  });
  return refusals;
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
