/**
 * Redis helpers that run beside the servers: a PSUBSCRIBE counter on a raw socket (it counts
 * `pmessage` replies in the byte stream without parsing them, so counting 100k messages/s costs
 * little CPU) and an external publisher that is not nestjs-wse (plain ioredis PUBLISH).
 */
import { connect, type Socket } from 'node:net';
import { Redis } from 'ioredis';
import type { LoopResult, RedisToolApi } from '../lib/apis.js';
import { benchMessage, clockMs } from '../lib/clock.js';
import { serve } from '../lib/ipc.js';
import { runPaced } from '../lib/loops.js';

const MARK = Buffer.from('$8\r\npmessage\r\n');

let counter: { socket: Socket; count: number; firstMs: number; lastMs: number } | undefined;

const api: RedisToolApi = {
  async countStart({ port, pattern }): Promise<void> {
    counter?.socket.destroy();
    const socket = connect({ host: '127.0.0.1', port });
    const state = { socket, count: 0, firstMs: 0, lastMs: 0 };
    counter = state;
    let tail = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      // A marker can straddle two chunks: search the previous chunk's last bytes together with this one.
      const buffer = tail.length === 0 ? chunk : Buffer.concat([tail, chunk]);
      let found = 0;
      for (let at = buffer.indexOf(MARK); at >= 0; at = buffer.indexOf(MARK, at + MARK.length)) found++;
      tail = Buffer.from(buffer.subarray(Math.max(0, buffer.length - (MARK.length - 1))));
      if (found > 0) {
        const now = clockMs();
        if (state.count === 0) state.firstMs = now;
        state.count += found;
        state.lastMs = now;
      }
    });
    socket.on('error', () => undefined);
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    socket.write(`*2\r\n$10\r\nPSUBSCRIBE\r\n$${Buffer.byteLength(pattern)}\r\n${pattern}\r\n`);
    // The subscribe confirmation is a `psubscribe` reply, not counted.
    await new Promise((resolve) => setTimeout(resolve, 100));
    state.count = 0;
  },

  async countRead(): Promise<{ count: number; firstMs: number; lastMs: number }> {
    if (counter === undefined) return { count: 0, firstMs: 0, lastMs: 0 };
    return { count: counter.count, firstMs: counter.firstMs, lastMs: counter.lastMs };
  },

  externalPaced({ port, channel, rate, durationMs }): Promise<LoopResult> {
    return publishPaced(port, () => channel, rate, durationMs);
  },

  externalPacedTopics({ port, channelPrefix, topics, rate, durationMs }): Promise<LoopResult> {
    const { prefix, count, suffix } = topics;
    return publishPaced(port, (seq) => channelPrefix + prefix + (seq % count) + suffix, rate, durationMs);
  },
};

/** `PUBLISH <channel of seq> <payload>` at a fixed rate, on a connection of its own. */
async function publishPaced(
  port: number,
  channelOf: (seq: number) => string,
  rate: number,
  durationMs: number,
): Promise<LoopResult> {
  const redis = new Redis({ host: '127.0.0.1', port, enableAutoPipelining: true });
  redis.on('error', () => undefined);
  const pending: Promise<unknown>[] = [];
  try {
    await redis.ping();
    return await runPaced(rate, durationMs, (seq, scheduled) => {
      pending.push(redis.publish(channelOf(seq), JSON.stringify(benchMessage(seq, scheduled))).catch(() => undefined));
    });
  } finally {
    // Every publish answered before QUIT: with auto-pipelining a QUIT sent in the same tick as
    // the last PUBLISH would overtake it.
    await Promise.all(pending);
    await redis.quit().catch(() => redis.disconnect());
  }
}

serve(api);
