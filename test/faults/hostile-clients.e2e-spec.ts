import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { CapturingLogger, startEngineApp, type EngineApp } from '../support/engine-app.js';
import { signToken, TEST_SECRET } from '../support/jwt.js';
import { parseExposition } from '../support/prometheus.js';
import { frame, RawWebSocket } from '../support/raw-ws.js';
import { TestClient } from '../support/ws-client.js';

/**
 * Hostile clients must not turn into a log flood (issue 10): every protocol-violating frame
 * (invalid UTF-8, RSV bits, an oversize announcement, an unmasked frame, a reserved opcode) made
 * Nest's WsAdapter log an ERROR with a stack trace, unauthenticated clients included, about two
 * lines per input; a ping whose client_timestamp nests deeply logged a RangeError from the
 * stack overflow in systemFrame. Violations are counted in metrics and logged at most once per
 * interval, never with a stack, and no client input reaches an unbounded recursion.
 */

const ABUSE_MS = 6_000;
const MAX_MESSAGE_BYTES = 64 * 1024;
const GOOD_ORIGIN = 'http://good.example';

type Abuse = (app: EngineApp) => Promise<void>;

const authed = (): string => `/wse?token=${signToken({ sub: 'hostile' })}`;

/** One raw connection that sends `bytes` and waits for the server to close it. */
function raw(path: () => string, bytes: () => Buffer, headers: Record<string, string> = {}): Abuse {
  return async (app) => {
    const socket = await RawWebSocket.open(app.port, path(), headers);
    socket.write(bytes());
    await socket.closed(5_000).catch(() => socket.destroy());
  };
}

const ABUSES: Record<string, Abuse> = {
  invalidUtf8: raw(authed, () => frame(Buffer.from([0x7b, 0xff, 0xfe, 0x7d]))),
  rsvBits: raw(authed, () => frame(Buffer.from('{"t":"ping"}'), { rsv: 0b100 })),
  oversize: raw(authed, () => frame(Buffer.alloc(16), { declaredLength: MAX_MESSAGE_BYTES + 1 })),
  unmasked: raw(authed, () => frame(Buffer.from('{"t":"ping"}'), { masked: false })),
  reservedOpcode: raw(authed, () => frame(Buffer.from('x'), { opcode: 0x3 })),
  unauthenticatedGarbage: raw(
    () => '/wse',
    () => Buffer.concat([frame(Buffer.from([0xc3, 0x28])), frame(Buffer.from('x'), { rsv: 0b010 })]),
  ),
  badOrigin: raw(authed, () => Buffer.alloc(0), { Origin: 'http://evil.example' }),
};

describe('hostile clients for 6 s: a log line per second at most, no stack, every violation counted', () => {
  const logger = new CapturingLogger();
  let app: EngineApp;
  let abuseStartedAt = 0;
  let linesBefore = 0;
  const sent: Record<string, number> = {};
  let deepAnswers: unknown[] = [];

  beforeAll(async () => {
    app = await startEngineApp(
      { auth: { jwtSecret: TEST_SECRET }, maxMessageBytes: MAX_MESSAGE_BYTES, allowedOrigins: [GOOD_ORIGIN] },
      { logger },
    );
    linesBefore = logger.lines.length;
    abuseStartedAt = Date.now();
    const kinds = Object.keys(ABUSES);
    // Ten hostile connections at a time, round-robin over the kinds, until the time is up.
    let next = 0;
    const worker = async (): Promise<void> => {
      while (Date.now() - abuseStartedAt < ABUSE_MS) {
        const kind = kinds[next++ % kinds.length];
        sent[kind] = (sent[kind] ?? 0) + 1;
        await ABUSES[kind](app);
      }
    };
    const deep = (async () => {
      // Deep pings on one authenticated connection, answered each time.
      const { client } = await TestClient.ready(`${app.wsUrl}?token=${signToken({ sub: 'deep' })}`);
      const answers: unknown[] = [];
      while (Date.now() - abuseStartedAt < ABUSE_MS) {
        client.send(`{"t":"ping","p":{"client_timestamp":${'['.repeat(30_000)}${']'.repeat(30_000)}}}`);
        answers.push((await client.nextEnvelope(3_000)).p);
        sent.deepPing = (sent.deepPing ?? 0) + 1;
      }
      await client.close();
      return answers;
    })();
    const workers = Array.from({ length: 10 }, worker);
    [deepAnswers] = await Promise.all([deep, ...workers]);
  }, 60_000);

  afterAll(async () => {
    await app?.close();
  });

  function abuseLines(): { level: string; message: string }[] {
    return logger.lines
      .slice(linesBefore)
      .filter(
        (line) => line.level === 'log' || line.level === 'warn' || line.level === 'error' || line.level === 'fatal',
      );
  }

  it('sent every kind of abuse, hundreds of inputs in all', () => {
    expect(Object.keys(sent).sort()).toEqual([...Object.keys(ABUSES), 'deepPing'].sort());
    expect(Object.values(sent).reduce((a, b) => a + b, 0)).toBeGreaterThan(200);
  });

  it('logs fewer lines than seconds of abuse, none of them with a stack trace', () => {
    const lines = abuseLines();
    expect(lines.filter((line) => /\n\s+at /.test(line.message))).toEqual([]);
    expect(lines.length).toBeLessThan(ABUSE_MS / 1000);
  });

  it('answers a ping whose client_timestamp is 30,000 arrays deep with a PONG, without recursing', () => {
    expect(deepAnswers.length).toBeGreaterThan(0);
    for (const answer of deepAnswers) expect(answer).toMatchObject({ client_timestamp: null });
    expect(logger.lines.filter((line) => /Maximum call stack/.test(line.message))).toEqual([]);
  });

  it('counts the violations by kind in wse_protocol_violations_total', async () => {
    const metrics = parseExposition(await app.metrics.metrics());
    const byKind = Object.fromEntries(
      metrics.series('wse_protocol_violations_total').map(([labels, value]) => [labels.kind, value]),
    );
    expect(byKind).toMatchObject({
      invalid_utf8: expect.any(Number),
      rsv_bits: expect.any(Number),
      oversize: expect.any(Number),
      unmasked: expect.any(Number),
      bad_opcode: expect.any(Number),
      origin_refused: expect.any(Number),
    });
    expect(byKind.invalid_utf8).toBeGreaterThanOrEqual(sent.invalidUtf8);
    expect(byKind.rsv_bits).toBeGreaterThanOrEqual(sent.rsvBits);
    expect(byKind.oversize).toBeGreaterThanOrEqual(sent.oversize);
    expect(byKind.unmasked).toBeGreaterThanOrEqual(sent.unmasked);
    expect(byKind.bad_opcode).toBeGreaterThanOrEqual(sent.reservedOpcode);
    expect(byKind.origin_refused).toBe(sent.badOrigin);
  });

  it('still serves a well-behaved client afterwards', async () => {
    const { client } = await TestClient.ready(`${app.wsUrl}?token=${signToken({ sub: 'fine' })}`);
    client.send({ t: 'ping', p: { client_timestamp: 42 } });
    expect((await client.nextEnvelope()).p).toMatchObject({ client_timestamp: 42 });
    await client.close();
  });
});
