/**
 * `npm run bench:events`: what Nest's pipeline costs per inbound application event (issue 16),
 * in-process and single-threaded, so only the pipeline is measured: no socket, no JSON. Four
 * handlers of the same work are called as the dispatcher calls them, one event at a time:
 *
 *   direct      the method called as before the pipeline (the baseline)
 *   pipeline    through ExternalContextCreator, no enhancer
 *   guard       with a class-level guard
 *   guard+pipe  with the guard and a ValidationPipe checking a two-field DTO
 *
 * Fan-out never passes here. Prints a table of microseconds per event (median of 5 runs).
 */
import 'reflect-metadata';
import { Injectable, Module, UseGuards, UsePipes, ValidationPipe, type CanActivate } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { IsString, MaxLength } from 'class-validator';
import { OnWseEvent, WseModule, WseWsAdapter, type WseEventContext } from '../src/index.js';
import { WseHooksExplorer } from '../src/transport/events/wse-hooks.explorer.js';

const EVENTS = Number(process.env.BENCH_EVENTS ?? 20_000);
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
class BenchModule {}

async function timePerEvent(call: () => Promise<unknown>): Promise<number> {
  const samples: number[] = [];
  for (let run = 0; run < RUNS; run++) {
    const started = process.hrtime.bigint();
    for (let i = 0; i < EVENTS; i++) await call();
    samples.push(Number(process.hrtime.bigint() - started) / 1000 / EVENTS);
  }
  samples.sort((a, b) => a - b);
  return samples[Math.floor(RUNS / 2)];
}

async function main(): Promise<void> {
  const app = await NestFactory.create(BenchModule, { logger: false, abortOnError: false });
  app.useWebSocketAdapter(new WseWsAdapter(app));
  await app.init();
  const handlers = app.get(WseHooksExplorer).eventHandlers;
  const plain = app.get(PlainHandlers);
  const payload = Object.freeze({ room: 'lobby', text: 'hello there' });
  const context = {
    connection: { id: 'c', userId: 'u', claims: null, connectedAt: new Date(), topics: new Set<string>() },
    frame: { t: 'plain', p: payload },
  } as WseEventContext;
  const run = (type: string) => {
    const handler = handlers.get(type);
    if (handler === undefined) throw new Error(`no handler for ${type}`);
    return () => handler(payload, context);
  };
  const rows: Array<[string, number]> = [
    ['direct', await timePerEvent(async () => plain.onPlain(payload))],
    ['pipeline', await timePerEvent(run('plain'))],
    ['guard', await timePerEvent(run('guarded'))],
    ['guard+pipe', await timePerEvent(run('validated'))],
  ];
  await app.close();
  const base = rows[0][1];
  console.log(`per inbound event, ${EVENTS} events x ${RUNS} runs (median), node ${process.version}`);
  console.log('| handler | us/event | over direct |');
  console.log('| --- | --- | --- |');
  for (const [name, us] of rows) console.log(`| ${name} | ${us.toFixed(2)} | +${(us - base).toFixed(2)} us |`);
  if (sink < 0) console.log(sink);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
