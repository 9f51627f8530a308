import { performance } from 'node:perf_hooks';
import WebSocket from 'ws';
import type { Server } from '../lib/rig.js';

/** The topic whose history a recovery replays (a history topic of `wse-history`). */
const RECOVER_TOPIC = 'bench:recover';

interface Position {
  readonly epoch: string;
  readonly offset: number;
}

/** What one recovery measured: how long from the request to the last replayed message. */
export interface RecoveryTiming {
  readonly ms: number;
  readonly replayed: number;
  readonly recovered: boolean;
}

/**
 * The time a reconnecting client waits for what it missed: a client learns the topic's position,
 * leaves, `count` messages are published through Redis while it is away, then it subscribes with
 * `recover: true` from that position; measured from the request to the last replayed message.
 * One plain WebSocket client in this process (the load clients do not speak recovery).
 */
export async function timeRecovery(server: Server, count: number, timeoutMs = 10_000): Promise<RecoveryTiming> {
  const socket = new WebSocket(`ws://127.0.0.1:${server.port}${server.path}`);
  const frames: string[] = [];
  let onFrame: (() => void) | undefined;
  socket.on('message', (data: Buffer) => {
    frames.push(data.toString('utf8'));
    onFrame?.();
  });
  const next = (match: (frame: string) => boolean): Promise<string> =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('recovery timing: no answer in time')), timeoutMs);
      const look = (): void => {
        const found = frames.find(match);
        if (found === undefined) return;
        frames.splice(frames.indexOf(found), 1);
        clearTimeout(timer);
        onFrame = undefined;
        resolve(found);
      };
      onFrame = look;
      look();
    });
  try {
    await next((f) => f.includes('"t":"server_ready"'));
    const subscribe = (extra: object): void =>
      socket.send(JSON.stringify({ t: 'subscription', p: { action: 'subscribe', topics: [RECOVER_TOPIC], ...extra } }));
    subscribe({});
    const answer = JSON.parse(await next((f) => f.includes('"t":"subscription_update"'))) as {
      p: { recovery?: Record<string, Position> };
    };
    const position = answer.p.recovery?.[RECOVER_TOPIC];
    if (position === undefined) throw new Error(`recovery timing: ${RECOVER_TOPIC} is not a history topic`);
    socket.send(JSON.stringify({ t: 'subscription', p: { action: 'unsubscribe', topics: [RECOVER_TOPIC] } }));
    await next((f) => f.includes('"action":"unsubscribe"'));
    const loop = await server.child.call('paced', {
      topic: RECOVER_TOPIC,
      rate: count * 10,
      durationMs: 100,
      via: 'redis',
    });
    // Every one of them in the history before the client comes back.
    await new Promise((resolve) => setTimeout(resolve, 500));
    frames.length = 0;
    const startedAt = performance.now();
    subscribe({ recover: true, recovery: { [RECOVER_TOPIC]: position } });
    let replayed = 0;
    let recovered = false;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`recovery timing: ${replayed} of ${loop.published} replayed`)),
        timeoutMs,
      );
      onFrame = () => {
        for (const frame of frames) {
          if (frame.startsWith(`{"tp":"${RECOVER_TOPIC}"`)) replayed++;
          else if (frame.includes('"t":"subscription_update"')) recovered = frame.includes('"recovered":true');
        }
        frames.length = 0;
        if (replayed >= loop.published) {
          clearTimeout(timer);
          resolve();
        }
      };
    });
    return { ms: performance.now() - startedAt, replayed, recovered };
  } finally {
    socket.terminate();
  }
}
