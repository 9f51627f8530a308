import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { ACCEPT_OWNERS, ownerShares, summarizeProfile, type Owner, type ProfileSummary } from '../lib/profile.js';
import type { RedisRouting, RedisToolApi } from '../lib/apis.js';
import { Child } from '../lib/ipc.js';
import { LoadClients, REDIS_TOOL_SCRIPT, Server, teardown } from '../lib/rig.js';
import { RedisServer } from '../../test/support/redis-server.js';
import { errorText, type Context } from './common.js';

export interface TitledProfile {
  readonly title: string;
  readonly summary?: ProfileSummary;
  /** Inclusive shares per owner (the accept profile: Nest's upgrade path, token check, ...). */
  readonly owners?: readonly { readonly owner: string; readonly share: number }[];
  readonly error?: string;
}

/** Runs `body` against a nestjs-wse server under `node --cpu-prof` and summarizes its profile. */
async function profiled(
  title: string,
  body: (server: Server, clients: LoadClients) => Promise<{ fromUs: number; toUs: number }>,
  options: {
    system?: 'wse' | 'wse-history';
    redisUrl?: string;
    redisRouting?: RedisRouting;
    jwtSecret?: string;
    owners?: readonly Owner[];
  } = {},
): Promise<TitledProfile> {
  const dir = mkdtempSync(join(os.tmpdir(), 'wse-bench-prof-'));
  let server: Server | undefined;
  let clients: LoadClients | undefined;
  try {
    [server, clients] = await Promise.all([
      Server.start({
        system: options.system ?? 'wse',
        redisUrl: options.redisUrl,
        redisRouting: options.redisRouting,
        jwtSecret: options.jwtSecret,
        execArgv: ['--cpu-prof', `--cpu-prof-dir=${dir}`, '--cpu-prof-interval=250'],
      }),
      LoadClients.start(),
    ]);
    const { fromUs, toUs } = await body(server, clients);
    // The profile is written when the process exits by itself.
    await server.child.shutdown(15_000);
    const owners = options.owners === undefined ? undefined : ownerShares(dir, fromUs, toUs, options.owners);
    return { title, summary: summarizeProfile(dir, fromUs, toUs), owners };
  } catch (error) {
    return { title, error: errorText(error) };
  } finally {
    await teardown([server], clients);
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * CPU profiles of the nestjs-wse server: the burst fan-out (scenario 1, first size, the one the
 * issue asks for), and as evidence for the other findings the publish path with 1,000
 * prefix-anchored globs present (scenario 5), one instance publishing into Redis (scenario 3)
 * and accepting connections with JWT (scenario 4).
 */
export async function profileScenario(ctx: Context): Promise<TitledProfile[]> {
  const n = ctx.config.burst.sizes[0];
  const ms = ctx.config.profileMs;
  const fanout = await profiled(
    `burst fan-out to ${n.toLocaleString('en')} subscribers of one topic, one message per event-loop turn, ${ms} ms`,
    async (server, clients) => {
      await clients.connectAll(server, n, { kind: 'same', topics: ['bench:burst'] });
      const fromUs = await server.child.call('monotonicUs', null);
      await clients.measure(server, [], n, 63, () =>
        server.child.call('burst', {
          topics: { prefix: 'bench:burst', count: 0, suffix: '' },
          perTurn: 1,
          durationMs: ms,
          via: 'local',
        }),
      );
      return { fromUs, toUs: await server.child.call('monotonicUs', null) };
    },
  );
  const { subscribers, topicsPerSubscriber } = ctx.config.patterns;
  const patterns = async (): Promise<TitledProfile> =>
    profiled(
      `publishLocal over ${(subscribers * topicsPerSubscriber).toLocaleString('en')} topics with 1,000 prefix-anchored globs present (scenario 5), ${ms} ms`,
      async (server, clients) => {
        await clients.connectAll(server, subscribers, {
          kind: 'range',
          prefix: 'user:',
          suffix: ':events',
          start: 0,
          perConnection: topicsPerSubscriber,
        });
        await clients.connectAll(server, 1, {
          kind: 'range',
          prefix: 'user:',
          suffix: ':*',
          start: 1_000_000,
          perConnection: 1_000,
        });
        const fromUs = await server.child.call('monotonicUs', null);
        await clients.measure(server, [], 1, 63, () =>
          server.child.call('burst', {
            topics: { prefix: 'user:', count: subscribers * topicsPerSubscriber, suffix: ':events' },
            perTurn: 32,
            durationMs: ms,
            via: 'local',
          }),
        );
        return { fromUs, toUs: await server.child.call('monotonicUs', null) };
      },
    );
  const flood = async (history = false): Promise<TitledProfile> => {
    const redis = await RedisServer.launch();
    try {
      return await profiled(
        `one instance publishing into Redis in a loop${history ? ', history topics' : ''} (scenario ${history ? 6 : 3}), ${ms} ms`,
        async (server) => {
          const fromUs = await server.child.call('monotonicUs', null);
          await server.child.call('flood', { topic: 'bench:flood', durationMs: ms, perTurn: 512, window: 20_000 });
          return { fromUs, toUs: await server.child.call('monotonicUs', null) };
        },
        { redisUrl: redis.url, system: history ? 'wse-history' : 'wse' },
      );
    } finally {
      await redis.stop();
    }
  };
  const receive = async (): Promise<TitledProfile> => {
    const redis = await RedisServer.launch();
    const tool = await Child.spawn<RedisToolApi>('redis-tool', REDIS_TOOL_SCRIPT);
    const topics = { prefix: 'scale:', count: 250, suffix: '' };
    const rate = 10_000;
    try {
      return await profiled(
        `receiving from Redis and delivering, interest routing: an outside PUBLISH at ${rate.toLocaleString('en')} msg/s over ${topics.count} topics, one connection each (scenario 7 (a2)), ${ms} ms`,
        async (server, clients) => {
          await clients.connectAll(server, topics.count, { kind: 'range', ...topics, start: 0, perConnection: 1 });
          const fromUs = await server.child.call('monotonicUs', null);
          await tool.call('externalPacedTopics', {
            port: redis.port,
            channelPrefix: 'wse:',
            topics,
            rate,
            durationMs: ms,
          });
          return { fromUs, toUs: await server.child.call('monotonicUs', null) };
        },
        { redisUrl: redis.url, redisRouting: 'interest' },
      );
    } finally {
      await tool.kill();
      await redis.stop();
    }
  };
  // --quick profiles the burst and the accept only (it has to stay under 4 minutes).
  const middle = ctx.config.quick ? [] : [await patterns(), await flood(), await flood(true), await receive()];
  const accept = await profiled(
    `accepting ${ctx.config.connections.sizes[0].toLocaleString('en')} connections with JWT (scenario 4)`,
    async (server, clients) => {
      const fromUs = await server.child.call('monotonicUs', null);
      await clients.connectAll(server, ctx.config.connections.sizes[0], { kind: 'none' }, { jwtSecret: ctx.jwtSecret });
      return { fromUs, toUs: await server.child.call('monotonicUs', null) };
    },
    { jwtSecret: ctx.jwtSecret, owners: ACCEPT_OWNERS },
  );
  const all = [fanout, ...middle, accept];
  for (const p of all) {
    ctx.log(`  profile: ${p.title}`);
    if (p.summary === undefined) ctx.results.note(`profile (${p.title}): ${p.error ?? 'unknown error'}`);
    for (const o of p.owners ?? []) ctx.log(`    ${(o.share * 100).toFixed(1).padStart(5)}%  (inclusive) ${o.owner}`);
    for (const e of p.summary?.top.slice(0, 8) ?? []) {
      ctx.log(`    ${(e.share * 100).toFixed(1).padStart(5)}%  ${e.name}  ${e.location}`);
    }
  }
  return all;
}
