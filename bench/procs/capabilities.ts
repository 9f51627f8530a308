/**
 * The in-process capability figures, in a process of their own (one core, nothing else in it):
 *
 * - What Nest's pipeline costs per inbound application event (`@OnWseEvent`): four handlers of
 *   the same work called as the dispatcher calls them, one event at a time (a connection's
 *   events are handled in order, so this is the rate one connection's events can be handled at):
 *   the method called directly (the baseline), through ExternalContextCreator with no enhancer,
 *   with a class-level guard, and with the guard and a ValidationPipe checking a two-field DTO.
 *   No socket and no JSON: only the pipeline is measured.
 * - The client's parse-and-dispatch rate in Node: `WseClient` (`nestjs-wse/client`) on a
 *   WebSocket stand-in that hands it frames as `ws` would (strings), counting `message` events;
 *   plain topic messages and stamped ones of a history topic (duplicate check, position kept).
 */
import 'reflect-metadata';
import { Injectable, Module, UseGuards, UsePipes, ValidationPipe, type CanActivate } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { IsString, MaxLength } from 'class-validator';
import { OnWseEvent, WseModule, WseWsAdapter, type WseEventContext } from '../../src/index.js';
import { WseClient, type WseSocket, type WseWebSocketConstructor } from '../../src/client/index.js';
import { WseHooksExplorer } from '../../src/transport/events/wse-hooks.explorer.js';
import type { CapabilitiesApi, EventPipelineFigures } from '../lib/apis.js';
import { benchMessage } from '../lib/clock.js';
import { serve } from '../lib/ipc.js';

const RUNS = 5;

class MessageDto {
  @IsString()
  @MaxLength(32)
  room!: string;

  @IsString()
  @MaxLength(2000)
  text!: string;
}

class AllowAll implements CanActivate {
  canActivate(): boolean {
    return true;
  }
}

let sink = 0;

@Injectable()
class PlainHandlers {
  @OnWseEvent('plain')
  onPlain(payload: Readonly<Record<string, unknown>>): void {
    sink += String(payload.text).length;
  }
}

@Injectable()
@UseGuards(AllowAll)
class GuardedHandlers {
  @OnWseEvent('guarded')
  onGuarded(payload: Readonly<Record<string, unknown>>): void {
    sink += String(payload.text).length;
  }

  @OnWseEvent('validated')
  @UsePipes(new ValidationPipe())
  onValidated(payload: MessageDto): void {
    sink += payload.text.length;
  }
}

@Module({ imports: [WseModule.forRoot({ auth: { anonymous: true } })], providers: [PlainHandlers, GuardedHandlers] })
class EventsModule {}

/** Median microseconds per call over RUNS runs of `count` calls. */
async function timePerCall(count: number, call: () => unknown): Promise<number> {
  const samples: number[] = [];
  for (let run = 0; run < RUNS; run++) {
    const started = process.hrtime.bigint();
    for (let i = 0; i < count; i++) await call();
    samples.push(Number(process.hrtime.bigint() - started) / 1000 / count);
  }
  samples.sort((a, b) => a - b);
  return samples[Math.floor(RUNS / 2)];
}

async function eventPipeline(events: number): Promise<EventPipelineFigures> {
  const app = await NestFactory.create(EventsModule, { logger: false, abortOnError: false });
  app.useWebSocketAdapter(new WseWsAdapter(app));
  await app.init();
  try {
    const handlers = app.get(WseHooksExplorer).eventHandlers;
    const plain = app.get(PlainHandlers);
    const payload = Object.freeze({ room: 'lobby', text: 'hello there' });
    const context = {
      connection: { id: 'c', userId: 'u', claims: null, connectedAt: new Date(), topics: new Set<string>() },
      frame: { t: 'plain', p: payload },
    } as WseEventContext;
    const run = (type: string): (() => unknown) => {
      const handler = handlers.get(type);
      if (handler === undefined) throw new Error(`no handler for ${type}`);
      return () => handler(payload, context);
    };
    // Every handler a few thousand times before timing, so none is timed cold.
    for (const type of ['plain', 'guarded', 'validated']) {
      const call = run(type);
      for (let i = 0; i < 5_000; i++) await call();
    }
    return {
      directUs: await timePerCall(events, async () => plain.onPlain(payload)),
      pipelineUs: await timePerCall(events, run('plain')),
      guardUs: await timePerCall(events, run('guarded')),
      guardPipeUs: await timePerCall(events, run('validated')),
    };
  } finally {
    await app.close();
  }
}

/** A WebSocket that is open at once and lets the caller hand the client frames. */
class FrameFeeder implements WseSocket {
  static last: FrameFeeder | undefined;
  readonly readyState = 1;
  binaryType = 'blob';
  onmessage: ((event: { data: unknown }) => void) | null = null;
  onclose: ((event: { code: number; reason: string }) => void) | null = null;
  onerror: (() => void) | null = null;

  constructor(readonly url: string) {
    FrameFeeder.last = this;
  }

  send(): void {}

  close(): void {}
}

const READY_FRAME = JSON.stringify({
  c: 'WSE',
  t: 'server_ready',
  p: { message: 'Connection established', details: { version: 1, ping_interval: 3_600_000, user_id: null } },
  v: 1,
});

const SUBSCRIBED_FRAME = JSON.stringify({
  c: 'WSE',
  t: 'subscription_update',
  p: { action: 'subscribe', success_topics: ['bench:history'], failed_topics: [] },
  v: 1,
});

/** Messages per second the client parses and dispatches, plain or stamped frames. */
async function clientDispatch(messages: number, stamped: boolean): Promise<number> {
  const client = new WseClient({
    url: 'ws://127.0.0.1/wse',
    WebSocket: FrameFeeder as unknown as WseWebSocketConstructor,
  });
  let received = 0;
  client.on('message', () => received++);
  for (let i = 0; i < 10 && FrameFeeder.last === undefined; i++) await new Promise((resolve) => setImmediate(resolve));
  const socket = FrameFeeder.last;
  if (socket?.onmessage == null) throw new Error('the client did not open its socket');
  FrameFeeder.last = undefined;
  socket.onmessage({ data: READY_FRAME });
  if (stamped) {
    // Subscribed, as the server would answer it, so stamped messages of the topic keep positions.
    const answered = client.subscribe('bench:history');
    socket.onmessage({ data: SUBSCRIBED_FRAME });
    await answered;
  }
  const samples: number[] = [];
  for (let run = 0; run < RUNS; run++) {
    // Built before the clock starts. Stamped frames: a new epoch per run, offsets growing in it,
    // so none is dropped as a duplicate.
    const batch: string[] = [];
    for (let i = 0; i < messages; i++) {
      const message = benchMessage(100_000 + i, 1_732_712_345_678.123);
      batch.push(JSON.stringify(stamped ? { tp: 'bench:history', e: `e${run}`, o: i, ...message } : message));
    }
    const before = received;
    const started = process.hrtime.bigint();
    for (let i = 0; i < messages; i++) socket.onmessage({ data: batch[i] });
    const elapsed = Number(process.hrtime.bigint() - started) / 1e9;
    if (received - before !== messages) throw new Error(`client dispatched ${received - before} of ${messages}`);
    samples.push(messages / elapsed);
  }
  client.close();
  samples.sort((a, b) => a - b);
  return samples[Math.floor(RUNS / 2)];
}

const api: CapabilitiesApi = {
  eventPipeline: ({ events }) => eventPipeline(events),
  clientDispatch: ({ messages, stamped }) => clientDispatch(messages, stamped),
};

serve(api);
if (sink < 0) console.log(sink);
