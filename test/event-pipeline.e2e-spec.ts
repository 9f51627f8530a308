import 'reflect-metadata';
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import {
  Catch,
  Injectable,
  Module,
  ParseIntPipe,
  UseFilters,
  UseGuards,
  ValidationPipe,
  type CallHandler,
  type CanActivate,
  type ExceptionFilter,
  type ExecutionContext,
  type INestApplication,
  type NestInterceptor,
} from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { IsIn, IsInt, IsNotEmpty, IsString, Matches, MaxLength, Min } from 'class-validator';
import { map, type Observable } from 'rxjs';
import {
  OnWseEvent,
  TopicRegistryService,
  WseClient,
  WseErrorCode,
  WseEventError,
  WseExecutionContext,
  WseFrame,
  WseModule,
  WsePayload,
  WseWsAdapter,
  type WseConnectionInfo,
  type WseEventContext,
} from '../src/index.js';
import type { InboundFrame } from '../src/protocol/inbound-frame.js';
import { signToken, TEST_SECRET } from './support/jwt.js';
import { eventually, TestClient } from './support/ws-client.js';

/**
 * Issue 16: @OnWseEvent handlers run through Nest's pipeline. One application with a DTO and a
 * global ValidationPipe, a class-level guard, a global guard, a global exception filter, a
 * method filter and an interceptor that times handlers; every behaviour is read off a real ws
 * client: the error codes, the correlation of each answer, and the connection staying open.
 */

// ---- the application ----------------------------------------------------------------------

class ChatMessageDto {
  @IsString()
  @Matches(/^[a-z]{1,16}$/)
  room!: string;

  @IsString()
  @IsNotEmpty()
  @MaxLength(20)
  text!: string;
}

class VoteDto {
  @IsIn(['yes', 'no'])
  choice!: string;

  @IsInt()
  @Min(1)
  weight!: number;
}

/** A domain exception the global filter knows how to answer. */
class RoomClosedError extends Error {
  constructor(readonly room: string) {
    super(`room ${room} is closed`);
  }
}

/** A domain exception only one handler's own filter answers. */
class QuotaError extends Error {}

/** What the interceptor and the guards saw, for assertions. */
const seen = {
  timings: [] as Array<{ event: string; ms: number }>,
  guardedEvents: [] as string[],
};

/** Class-level guard: a connection whose token says `role: "banned"` may send nothing here. */
@Injectable()
class NotBanned implements CanActivate {
  canActivate(context: ExecutionContext): boolean {
    const { connection, event } = WseExecutionContext.of(context);
    seen.guardedEvents.push(event);
    return connection.claims?.role !== 'banned';
  }
}

/** Global guard (useGlobalGuards): read-only tokens may not send `vote`. Other contexts pass. */
class ReadOnlyTokens implements CanActivate {
  canActivate(context: ExecutionContext): boolean {
    if (!WseExecutionContext.is(context)) return true;
    const ws = context.switchToWs();
    return !(ws.getPattern() === 'vote' && (ws.getClient() as WseConnectionInfo).claims?.scope === 'read');
  }
}

/** Global interceptor: times every handler and adds `took_ms` to object answers. */
class TimingInterceptor implements NestInterceptor {
  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    const started = performance.now();
    const { event } = WseExecutionContext.of(context);
    return next.handle().pipe(
      map((result: unknown) => {
        const ms = performance.now() - started;
        seen.timings.push({ event, ms });
        return typeof result === 'object' && result !== null ? { ...result, took_ms: Math.round(ms) } : result;
      }),
    );
  }
}

/** Global filter: a closed room is answered with an event of its own, not an error. */
@Catch(RoomClosedError)
class RoomClosedFilter implements ExceptionFilter {
  catch(error: RoomClosedError, host: ExecutionContext): unknown {
    return { t: 'room_closed', p: { room: error.room, event: WseExecutionContext.of(host).event } };
  }
}

/** Method filter: turns a quota error into an error frame with a code of the app's own. */
@Catch(QuotaError)
class QuotaFilter implements ExceptionFilter {
  catch(error: QuotaError): never {
    throw new WseEventError('QUOTA_EXCEEDED', error.message);
  }
}

@Injectable()
@UseGuards(NotBanned)
class ChatHandlers {
  /** Undecorated, as handlers have always been written: the global ValidationPipe checks the DTO. */
  @OnWseEvent('chat_message')
  onChat(message: ChatMessageDto, { connection }: WseEventContext): unknown {
    if (message.room === 'closed') throw new RoomClosedError(message.room);
    return { t: 'chat_ok', p: { room: message.room, text: message.text, user: connection.userId } };
  }

  /** Decorated parameters. */
  @OnWseEvent('vote')
  onVote(@WsePayload() vote: VoteDto, @WseClient() connection: WseConnectionInfo, @WseFrame() frame: InboundFrame) {
    return { t: 'vote_ok', p: { choice: vote.choice, weight: vote.weight, user: connection.userId, id: frame.id } };
  }

  /** One property of the payload through a parameter pipe. */
  @OnWseEvent('page')
  onPage(@WsePayload('n', ParseIntPipe) n: number): unknown {
    return { t: 'page_ok', p: { n, type: typeof n } };
  }

  @OnWseEvent('slow')
  async onSlow(): Promise<unknown> {
    await new Promise((resolve) => setTimeout(resolve, 60));
    return { t: 'slow_ok', p: {} };
  }

  @OnWseEvent('quota')
  @UseFilters(QuotaFilter)
  onQuota(): never {
    throw new QuotaError('10 messages a minute');
  }

  @OnWseEvent('crash')
  onCrash(): never {
    throw new Error('database password is hunter2');
  }

  @OnWseEvent('known_error')
  onKnownError(): never {
    throw new WseEventError('ROOM_FULL', 'the room is full');
  }
}

@Module({ imports: [WseModule.forRoot({ auth: { jwtSecret: TEST_SECRET } })], providers: [ChatHandlers] })
class PipelineTestModule {}

// ---- the suite -------------------------------------------------------------------------------

const envelope = (t: string, p: Record<string, unknown>, extra: Record<string, unknown> = {}) => ({
  c: 'WSE',
  t,
  p,
  v: 1,
  ...extra,
});

/** The test application with the global enhancers, listening on 127.0.0.1. */
async function startPipelineApp(globalPipe: ValidationPipe): Promise<{ app: INestApplication; wsUrl: string }> {
  const app = await NestFactory.create(PipelineTestModule, { logger: false, abortOnError: false });
  app.useWebSocketAdapter(new WseWsAdapter(app));
  app.useGlobalPipes(globalPipe);
  app.useGlobalGuards(new ReadOnlyTokens());
  app.useGlobalInterceptors(new TimingInterceptor());
  app.useGlobalFilters(new RoomClosedFilter());
  await app.listen(0, '127.0.0.1');
  return { app, wsUrl: `ws://127.0.0.1:${(app.getHttpServer().address() as { port: number }).port}/wse` };
}

describe('the Nest pipeline on @OnWseEvent handlers', () => {
  let app: INestApplication;
  let wsUrl: string;
  const open: TestClient[] = [];

  async function connect(claims: Record<string, unknown> = { sub: 'alice' }): Promise<TestClient> {
    const { client } = await TestClient.ready(`${wsUrl}?token=${signToken(claims)}`);
    open.push(client);
    return client;
  }

  /** One more event answered normally: the connection is open and still served. */
  async function expectStillServed(client: TestClient): Promise<void> {
    client.send({ t: 'page', p: { n: '2' } });
    expect(await client.nextJson()).toEqual({ t: 'page_ok', p: { n: 2, type: 'number' }, took_ms: expect.any(Number) });
    expect(client.isOpen).toBe(true);
  }

  beforeAll(async () => {
    ({ app, wsUrl } = await startPipelineApp(new ValidationPipe()));
  });
  afterEach(async () => {
    await Promise.all(open.splice(0).map((client) => client.close()));
    await eventually(() => app.get(TopicRegistryService).connectionCount === 0, 2_000, 'every connection to close');
  });
  afterAll(async () => {
    await app.close();
  });

  describe('a valid event', () => {
    it('reaches the undecorated handler through the guard, the global pipe and the interceptor', async () => {
      const client = await connect();

      client.send({ t: 'chat_message', p: { room: 'lobby', text: 'hi' }, id: 'm-1' });

      expect(await client.nextJson()).toEqual({
        t: 'chat_ok',
        p: { room: 'lobby', text: 'hi', user: 'alice' },
        took_ms: expect.any(Number),
      });
      await client.expectNothing(100);
    });

    it('fills decorated parameters: the payload, the connection and the frame', async () => {
      const client = await connect();

      client.send({ t: 'vote', p: { choice: 'yes', weight: 2 }, id: 'v-1' });

      expect(await client.nextJson()).toEqual({
        t: 'vote_ok',
        p: { choice: 'yes', weight: 2, user: 'alice', id: 'v-1' },
        took_ms: expect.any(Number),
      });
    });

    it('runs a parameter pipe on one property of the payload', async () => {
      const client = await connect();

      client.send({ t: 'page', p: { n: '41' } });

      expect(await client.nextJson()).toEqual({
        t: 'page_ok',
        p: { n: 41, type: 'number' },
        took_ms: expect.any(Number),
      });
    });
  });

  describe('the interceptor', () => {
    it('times the handler it wraps', async () => {
      const client = await connect();
      seen.timings.length = 0;

      client.send({ t: 'slow' });

      const answer = (await client.nextJson()) as { took_ms: number };
      // The handler waits 60 ms; the interceptor's clock is the same process's, so it saw at
      // least that (rounding can take off half a millisecond).
      expect(answer.took_ms).toBeGreaterThanOrEqual(59);
      expect(seen.timings).toEqual([{ event: 'slow', ms: expect.any(Number) }]);
      expect(seen.timings[0].ms).toBeGreaterThanOrEqual(59);
    });
  });

  describe('a pipe refusing the payload', () => {
    it('answers INVALID_PAYLOAD listing the failed fields, correlated by id, and keeps the connection open', async () => {
      const client = await connect();

      client.send({ t: 'chat_message', p: { room: 'Lobby!', text: '' }, id: 'm-2' });

      expect(await client.nextJson()).toEqual(
        envelope(
          'error',
          {
            code: 'INVALID_PAYLOAD',
            message: 'Payload of event "chat_message" is invalid',
            errors: ['room must match /^[a-z]{1,16}$/ regular expression', 'text should not be empty'],
          },
          { cid: 'm-2' },
        ),
      );
      await expectStillServed(client);
    });

    it('answers a parameter pipe refusing too, without a correlation when the frame has none', async () => {
      const client = await connect();

      client.send({ t: 'page', p: { n: 'three' } });

      expect(await client.nextJson()).toEqual(
        envelope('error', { code: 'INVALID_PAYLOAD', message: 'Validation failed (numeric string is expected)' }),
      );
      await expectStillServed(client);
    });

    it('never calls the handler (the interceptor saw nothing)', async () => {
      const client = await connect();
      seen.timings.length = 0;

      client.send({ t: 'chat_message', p: { room: 'lobby' } });

      expect(((await client.nextJson()) as { p: { code: string } }).p.code).toBe('INVALID_PAYLOAD');
      expect(seen.timings).toEqual([]);
    });
  });

  describe('a guard refusing the event', () => {
    it('answers FORBIDDEN from the class-level guard, correlated, and keeps the connection open', async () => {
      const client = await connect({ sub: 'bob', role: 'banned' });

      client.send({ t: 'chat_message', p: { room: 'lobby', text: 'hi' }, id: 'm-3' });

      expect(await client.nextJson()).toEqual(
        envelope('error', { code: 'FORBIDDEN', message: 'Forbidden resource' }, { cid: 'm-3' }),
      );
      // The guard runs before the pipes: a banned client learns nothing about the payload rules.
      client.send({ t: 'chat_message', p: { room: 'Bad!' }, id: 'm-4' });
      expect(await client.nextJson()).toEqual(
        envelope('error', { code: 'FORBIDDEN', message: 'Forbidden resource' }, { cid: 'm-4' }),
      );
      expect(client.isOpen).toBe(true);
      client.send({ t: 'ping', p: { client_timestamp: 5 } });
      expect(await client.nextJson()).toMatchObject({ t: 'PONG', p: { client_timestamp: 5 } });
    });

    it('answers FORBIDDEN from the global guard for the event it refuses, and serves the others', async () => {
      const client = await connect({ sub: 'carol', scope: 'read' });

      client.send({ t: 'vote', p: { choice: 'yes', weight: 1 }, id: 'v-3' });

      expect(await client.nextJson()).toEqual(
        envelope('error', { code: 'FORBIDDEN', message: 'Forbidden resource' }, { cid: 'v-3' }),
      );
      client.send({ t: 'chat_message', p: { room: 'lobby', text: 'reading is fine' } });
      expect(await client.nextJson()).toMatchObject({ t: 'chat_ok', p: { user: 'carol' } });
    });

    it('sees the event type and the connection through WseExecutionContext', async () => {
      const client = await connect();
      seen.guardedEvents.length = 0;

      client.send({ t: 'page', p: { n: '1' } });
      await client.next();

      expect(seen.guardedEvents).toEqual(['page']);
    });
  });

  describe('exceptions', () => {
    it('lets the global filter answer a domain exception with a value of its own', async () => {
      const client = await connect();

      client.send({ t: 'chat_message', p: { room: 'closed', text: 'anyone?' }, id: 'm-5' });

      // The filter's value goes back like a handler's; the interceptor never saw a result.
      expect(await client.nextJson()).toEqual({ t: 'room_closed', p: { room: 'closed', event: 'chat_message' } });
      await expectStillServed(client);
    });

    it("lets a method filter turn an exception into an error frame with the app's own code", async () => {
      const client = await connect();

      client.send({ t: 'quota', id: 'q-1' });

      expect(await client.nextJson()).toEqual(
        envelope('error', { code: 'QUOTA_EXCEEDED', message: '10 messages a minute' }, { cid: 'q-1' }),
      );
      await expectStillServed(client);
    });

    it('keeps the code and message of a WseEventError', async () => {
      const client = await connect();

      client.send({ t: 'known_error', cid: 'k-1' });

      expect(await client.nextJson()).toEqual(
        envelope('error', { code: 'ROOM_FULL', message: 'the room is full' }, { cid: 'k-1' }),
      );
    });

    it('answers anything else with INTERNAL_ERROR, without its details, and keeps the connection open', async () => {
      const client = await connect();

      client.send({ t: 'crash', id: 'x-1' });

      const answer = await client.next();
      expect(answer.json).toEqual(
        envelope(
          'error',
          { code: WseErrorCode.INTERNAL_ERROR, message: 'Handler for event "crash" failed' },
          { cid: 'x-1' },
        ),
      );
      expect(answer.text).not.toContain('hunter2');
      await expectStillServed(client);
    });
  });

  describe('events outside the pipeline', () => {
    it('answers an unknown event with UNKNOWN_EVENT, correlated too', async () => {
      const client = await connect();

      client.send({ t: 'no_such_event', id: 'u-1' });

      expect(await client.nextJson()).toEqual(
        envelope('error', { code: 'UNKNOWN_EVENT', message: 'No handler for event "no_such_event"' }, { cid: 'u-1' }),
      );
    });

    it('runs no guard for control frames (ping, subscription)', async () => {
      const client = await connect({ sub: 'bob', role: 'banned' });
      seen.guardedEvents.length = 0;

      expect((await client.subscribe(['news'])).p).toMatchObject({ success_topics: ['news'] });
      client.send({ t: 'ping' });
      expect(await client.nextJson()).toMatchObject({ t: 'PONG' });
      expect(seen.guardedEvents).toEqual([]);
    });
  });
});

describe('a global ValidationPipe grouping its errors by field', () => {
  let grouped: { app: INestApplication; wsUrl: string };

  beforeAll(async () => {
    grouped = await startPipelineApp(new ValidationPipe({ errorFormat: 'grouped' }));
  });
  afterAll(async () => {
    await grouped.app.close();
  });

  it('lists the errors by field when the pipe groups them (errorFormat: grouped)', async () => {
    const { client } = await TestClient.ready(`${grouped.wsUrl}?token=${signToken({ sub: 'alice' })}`);

    client.send({ t: 'vote', p: { choice: 'maybe', weight: 0 }, id: 'v-2', cid: 'ballot-7' });

    expect(await client.nextJson()).toEqual(
      envelope(
        'error',
        {
          code: 'INVALID_PAYLOAD',
          message: 'Payload of event "vote" is invalid',
          errors: ['choice must be one of the following values: yes, no', 'weight must not be less than 1'],
          fields: {
            choice: ['choice must be one of the following values: yes, no'],
            weight: ['weight must not be less than 1'],
          },
        },
        // cid wins over id: it is what the client pairs answers with.
        { cid: 'ballot-7' },
      ),
    );
    await client.close();
  });
});
