import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, jest } from '@jest/globals';
import WebSocket from 'ws';
import { errorMessages, invalidMessages } from '../src/wse.messages.js';
import { startEngineApp, type EngineApp } from './support/engine-app.js';
import { forceGc, settle } from './support/memory.js';
import { Prng } from './support/prng.js';
import { parseExposition } from './support/prometheus.js';
import { ServerProcess } from './support/server-process.js';
import { eventually, TestClient, type Envelope, type ReceivedFrame } from './support/ws-client.js';

/**
 * Hostile input, bounded in count and time (issue "Operations", docs/SECURITY.md "Hostile
 * input"): random and malformed frames through real connections, the HTTP API with random and
 * ill-typed bodies, prototype-pollution keys, and connection churn against memory. Inputs come
 * from a seeded generator: the seed is in every suite's name, and `WSE_FUZZ_SEED=<seed>` replays
 * a failure exactly.
 */

// testTimeout in jest.config.js's project is not applied per project: the integration bound, here.
jest.setTimeout(30_000);

const SEED = Prng.fromEnvironment().seed;
const REPLAY = `seed ${SEED}; replay with WSE_FUZZ_SEED=${SEED}`;
/** A generator per test, so each test's inputs do not depend on which tests ran before it. */
const prngFor = (salt: number): Prng => new Prng((SEED ^ Math.imul(salt, 0x9e3779b1)) >>> 0);

const API_KEY = 'fuzz-api-key';
const MAX_MESSAGE_BYTES = 1_048_576;
const MiB = 1_048_576;

const envelope = (t: string, p: Record<string, unknown>) => ({ c: 'WSE', t, p, v: 1 });
const invalid = (message: string) => envelope('error', { code: 'INVALID_MESSAGE', message });
/** An event's `error` answer carries the frame's correlation: its string `cid`, else its string `id`. */
const unknownEvent = (t: string, cid?: string) => ({
  ...envelope('error', { code: 'UNKNOWN_EVENT', message: errorMessages.unknownEvent(t) }),
  ...(cid === undefined ? {} : { cid }),
});
const pong = (clientTimestamp: unknown, timestamp: unknown = null) => ({
  c: 'WSE',
  t: 'PONG',
  p: { client_timestamp: clientTimestamp, timestamp, server_timestamp: expect.any(Number) },
  v: 1,
});

// ---- the documented answer to a frame (CONTRACT section 4, docs/PROTOCOL.md) ---------------

type Answer =
  | { kind: 'frame'; frame: unknown }
  | { kind: 'hello' }
  | { kind: 'update'; action: string; topics: string[] }
  | { kind: 'sync' }
  | { kind: 'none' };

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

function isValidUtf8(bytes: Buffer): boolean {
  try {
    strictUtf8.decode(bytes);
    return true;
  } catch {
    return false;
  }
}

/**
 * What the contract says the server answers to one frame the engine app receives (it has no
 * event handlers of its own, so every application event is unknown).
 */
function documentedAnswer(bytes: Buffer, binary: boolean): Answer {
  const error = (message: string): Answer => ({ kind: 'frame', frame: invalid(message) });
  if (binary && !isValidUtf8(bytes)) return error(invalidMessages.notUtf8());
  // A category prefix (WSE{, S{, U{ and the same before [) is skipped, as WSE's SDKs send it.
  const text = bytes.toString('utf8');
  const prefix = /^(WSE|S|U)[[{]/.exec(text)?.[1].length ?? 0;
  let value: unknown;
  try {
    value = JSON.parse(text.slice(prefix));
  } catch {
    return error(invalidMessages.notJson());
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return error(invalidMessages.notObject());
  const frame = value as Record<string, unknown>;
  // `type` and `payload` stand for `t` and `p` when those are absent.
  const t = Object.hasOwn(frame, 't') ? frame.t : Object.hasOwn(frame, 'type') ? frame.type : undefined;
  if (typeof t !== 'string' || t === '') {
    return error(invalidMessages.missingType());
  }
  const p = Object.hasOwn(frame, 'p') ? frame.p : Object.hasOwn(frame, 'payload') ? frame.payload : undefined;
  if (p !== undefined && p !== null && (typeof p !== 'object' || Array.isArray(p))) {
    return error(invalidMessages.payloadNotObject());
  }
  const payload = (p ?? {}) as Record<string, unknown>;
  const own = (key: string): unknown => (Object.hasOwn(payload, key) ? payload[key] : undefined);
  switch (t.toLowerCase()) {
    case 'ping':
      return { kind: 'frame', frame: pong(own('client_timestamp') ?? null, own('timestamp') ?? null) };
    case 'pong':
      return { kind: 'none' };
    case 'client_hello':
      return { kind: 'hello' };
    case 'sync_request':
      return { kind: 'sync' };
    case 'subscription':
    case 'subscription_update': {
      const action = own('action');
      if (action !== 'subscribe' && action !== 'unsubscribe') return error(invalidMessages.badSubscriptionAction());
      const topics = own('topics');
      if (!Array.isArray(topics)) return error(invalidMessages.badSubscriptionTopics());
      if (topics.length > 100) return error(invalidMessages.tooManyTopics(100));
      if (!topics.every((topic) => typeof topic === 'string')) return error(invalidMessages.badSubscriptionTopics());
      return { kind: 'update', action, topics };
    }
    default: {
      const cid = typeof frame.cid === 'string' ? frame.cid : typeof frame.id === 'string' ? frame.id : undefined;
      return { kind: 'frame', frame: unknownEvent(t, cid) };
    }
  }
}

/** Checks one received frame against the documented answer; returns a problem or undefined. */
function mismatch(answer: Answer, received: ReceivedFrame): string | undefined {
  const json = received.json as Envelope | undefined;
  switch (answer.kind) {
    case 'frame':
      try {
        expect(json).toEqual(answer.frame);
        return undefined;
      } catch {
        return `expected ${JSON.stringify(answer.frame)}, got ${received.text.slice(0, 300)}`;
      }
    case 'hello':
      return json?.t === 'server_hello' ? undefined : `expected server_hello, got ${received.text.slice(0, 300)}`;
    case 'sync':
      return json?.t === 'snapshot_complete'
        ? undefined
        : `expected snapshot_complete, got ${received.text.slice(0, 300)}`;
    case 'update': {
      if (json?.t !== 'subscription_update' || json.p.action !== answer.action) {
        return `expected subscription_update (${answer.action}), got ${received.text.slice(0, 300)}`;
      }
      // Every requested topic is either a success or a failure: nothing lost, nothing invented.
      const listed = [...(json.p.success_topics as string[]), ...(json.p.failed_topics as string[])].sort();
      const asked = [...answer.topics].sort();
      return JSON.stringify(listed) === JSON.stringify(asked)
        ? undefined
        : `subscription_update lists ${JSON.stringify(listed)} for ${JSON.stringify(asked)}`;
    }
    case 'none':
      return 'no answer expected';
  }
}

/**
 * Sends frames on one connection, then a sentinel ping, and checks that every frame got its
 * documented answer, in order, before the sentinel's PONG. Returns the problems found.
 */
async function sendAndCheck(
  client: TestClient,
  frames: Array<{ bytes: Buffer; binary: boolean }>,
  sentinel: string,
): Promise<string[]> {
  const answers = frames.map(({ bytes, binary }) => documentedAnswer(bytes, binary)).filter((a) => a.kind !== 'none');
  for (const { bytes, binary } of frames) client.socket.send(bytes, { binary });
  client.send({ t: 'ping', p: { client_timestamp: sentinel } });
  const received = await client.take(answers.length + 1, 20_000);
  const problems: string[] = [];
  answers.forEach((answer, i) => {
    const problem = mismatch(answer, received[i]);
    if (problem !== undefined) problems.push(`frame ${i}: ${problem}`);
  });
  const last = received.at(-1)!;
  if ((last.json as Envelope | undefined)?.p?.client_timestamp !== sentinel) {
    problems.push(`expected the sentinel PONG last, got ${last.text.slice(0, 200)}`);
  }
  return problems;
}

// ---- generators -------------------------------------------------------------------------------

/** Random bytes, never starting with WSE's binary markers `M:`, `C:` or `E:` (read as other formats). */
function notWseBinary(bytes: Buffer): Buffer {
  if (bytes.length >= 2 && bytes[1] === 0x3a && [0x4d, 0x43, 0x45].includes(bytes[0])) bytes[0] = 0x00;
  return bytes;
}

/**
 * Sets an own, enumerable key, `__proto__` included (a plain assignment of `__proto__` would set
 * the object's prototype instead, and JSON.stringify would leave it out).
 */
function setOwn(object: Record<string, unknown>, key: string, value: unknown): void {
  Object.defineProperty(object, key, { value, enumerable: true, writable: true, configurable: true });
}

const TYPES = [
  'ping',
  'PING',
  'Ping',
  'pong',
  'PONG',
  'client_hello',
  'subscription',
  'subscription_update',
  'sync_request',
  'x',
  '',
  ' ',
  'ping ',
  'ŧ',
];
const KEYS = [
  't',
  'p',
  'type',
  'payload',
  'c',
  'v',
  'id',
  'cid',
  'action',
  'topics',
  'client_timestamp',
  'timestamp',
  '__proto__',
  'constructor',
];

/** A random JSON value of bounded depth and size. */
function randomValue(prng: Prng, depth = 0): unknown {
  const leafOnly = depth >= 4;
  switch (prng.int(0, leafOnly ? 5 : 8)) {
    case 0:
      return null;
    case 1:
      return prng.bool();
    case 2:
      return prng.pick([0, -1, 1.5, 1e308, -0, 2 ** 53 + 1, prng.int(-1000, 1000)]);
    case 3:
      return prng.pick(TYPES);
    case 4:
      return prng.string(prng.int(0, 24), 'abc:*?[]\\-_. é€\u0000\u001f\u007f\u0085"');
    case 5:
      return prng.pick(['subscribe', 'unsubscribe', 'SUBSCRIBE', 'a:*', 'a'.repeat(300)]);
    case 6:
      return Array.from({ length: prng.int(0, 6) }, () => randomValue(prng, depth + 1));
    default: {
      const object: Record<string, unknown> = {};
      for (let i = prng.int(0, 5); i > 0; i--) setOwn(object, prng.pick(KEYS), randomValue(prng, depth + 1));
      return object;
    }
  }
}

/** A frame shaped like a client frame, with random types in random fields. */
function randomFrame(prng: Prng): unknown {
  const frame: Record<string, unknown> = {};
  if (prng.bool(0.9)) frame.t = prng.bool(0.8) ? prng.pick(TYPES) : randomValue(prng, 3);
  if (prng.bool(0.8)) {
    const p: Record<string, unknown> = {};
    if (prng.bool(0.6)) p.action = prng.bool(0.7) ? prng.pick(['subscribe', 'unsubscribe']) : randomValue(prng, 3);
    if (prng.bool(0.6)) {
      p.topics = prng.bool(0.7)
        ? Array.from({ length: prng.int(0, 8) }, () => (prng.bool(0.85) ? randomValue(prng, 4) : 1))
        : randomValue(prng, 3);
    }
    if (prng.bool(0.3)) p.client_timestamp = randomValue(prng, 2);
    frame.p = prng.bool(0.9) ? p : randomValue(prng, 2);
  }
  for (const key of ['id', 'cid', 'c', 'v']) if (prng.bool(0.2)) frame[key] = randomValue(prng, 3);
  return prng.bool(0.05) ? randomValue(prng) : frame;
}

/** Text mutations of a JSON text that keep it valid UTF-8 (so no 1007 close). */
function mutate(prng: Prng, text: string): string {
  const chars = [...text];
  for (let n = prng.int(1, 3); n > 0 && chars.length > 0; n--) {
    const at = prng.int(0, chars.length - 1);
    switch (prng.int(0, 3)) {
      case 0:
        chars.splice(at, 1);
        break;
      case 1:
        chars.splice(at, 0, prng.pick(['{', '}', '[', ']', '"', ',', ':', '\\', 'é', '\u0000']));
        break;
      case 2:
        chars[at] = prng.pick(['{', '}', '"', '0', 'n', 't']);
        break;
      default:
        chars.length = at;
    }
  }
  return chars.join('');
}

// ---- frames through real connections ---------------------------------------------------------

describe(`hostile frames against an engine app in-process (${REPLAY})`, () => {
  let server: EngineApp;
  const opened: TestClient[] = [];

  async function connect(): Promise<TestClient> {
    const { client } = await TestClient.ready(server.wsUrl);
    opened.push(client);
    return client;
  }

  async function expectHealthy(): Promise<void> {
    const response = await fetch(`${server.httpUrl}/health`, { signal: AbortSignal.timeout(5_000) });
    expect({
      status: response.status,
      wse: ((await response.json()) as { info?: { wse?: { status?: string } } }).info?.wse?.status,
    }).toEqual({
      status: 200,
      wse: 'up',
    });
  }

  beforeAll(async () => {
    // No heartbeat during the suite: every frame a client receives is an answer.
    server = await startEngineApp({ apiKey: API_KEY, pingIntervalMs: 600_000 });
  });
  afterEach(async () => {
    for (const client of opened.splice(0)) await client.close();
    await eventually(() => server.registry.connectionCount === 0, 5_000, 'every connection to be unregistered');
    expect(server.registry.topicCount).toBe(0);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    await expectHealthy();
  });
  afterAll(async () => {
    await server.close();
  });

  it('answers 300 frames of random bytes sent as binary with their documented errors, in order', async () => {
    const prng = prngFor(1);
    const client = await connect();
    // Random bytes that happen to start with WSE's binary markers (M:, C:, E:) are other formats,
    // covered by wse-clients.e2e-spec.ts and protocol/inbound-frame.spec.ts: their first byte is changed.
    const frames = Array.from({ length: 300 }, () => ({
      bytes: notWseBinary(prng.bytes(prng.int(0, 300))),
      binary: true,
    }));
    // A few that are valid UTF-8 but not JSON, or JSON but not an object.
    frames.push({ bytes: Buffer.from('héllo'), binary: true }, { bytes: Buffer.from('[1,2]'), binary: true });

    expect(await sendAndCheck(client, frames, 'after-random-binary')).toEqual([]);
    expect(client.isOpen).toBe(true);
  });

  it('closes with 1007 on text frames that are not valid UTF-8, and answers the valid ones', async () => {
    const prng = prngFor(2);
    const survivor = await connect();
    const samples = [
      Buffer.from([0xff]),
      Buffer.from([0xc0, 0x80]), // overlong NUL
      Buffer.from([0xed, 0xa0, 0x80]), // a lone surrogate
      Buffer.from([0xe2, 0x82]), // truncated
      Buffer.from([0xf4, 0x90, 0x80, 0x80]), // above U+10FFFF
      ...Array.from({ length: 25 }, () => prng.bytes(prng.int(1, 64))),
    ];
    const valid: Array<{ bytes: Buffer; binary: boolean }> = [];
    for (const bytes of samples) {
      if (isValidUtf8(bytes)) {
        valid.push({ bytes, binary: false });
        continue;
      }
      const client = await connect();
      client.socket.send(bytes, { binary: false });
      const closed = await client.closed(5_000);
      expect({ bytes: bytes.toString('hex'), code: closed.code }).toEqual({ bytes: bytes.toString('hex'), code: 1007 });
    }
    // The same bytes as binary frames are answered, not closed.
    const asBinary = samples.map((bytes) => ({ bytes, binary: true }));
    expect(await sendAndCheck(survivor, [...asBinary, ...valid], 'after-invalid-utf8')).toEqual([]);
  });

  it('answers 1000 random client-shaped frames with wrong types in every field as documented', async () => {
    const prng = prngFor(3);
    const client = await connect();
    const problems: string[] = [];
    for (let batch = 0; batch < 10; batch++) {
      const frames = Array.from({ length: 100 }, () => ({
        bytes: Buffer.from(JSON.stringify(randomFrame(prng))),
        binary: prng.bool(0.3),
      }));
      problems.push(...(await sendAndCheck(client, frames, `batch-${batch}`)).map((p) => `batch ${batch}, ${p}`));
    }
    expect(problems.slice(0, 10)).toEqual([]);
    expect(client.isOpen).toBe(true);
  }, 60_000);

  it('answers 500 mutated (mostly broken) JSON frames as documented', async () => {
    const prng = prngFor(4);
    const client = await connect();
    const problems: string[] = [];
    for (let batch = 0; batch < 5; batch++) {
      const frames = Array.from({ length: 100 }, () => ({
        bytes: Buffer.from(mutate(prng, JSON.stringify(randomFrame(prng)))),
        binary: prng.bool(0.3),
      }));
      problems.push(...(await sendAndCheck(client, frames, `mutated-${batch}`)).map((p) => `batch ${batch}, ${p}`));
    }
    expect(problems.slice(0, 10)).toEqual([]);
  }, 60_000);

  it.each<[string, unknown, unknown]>([
    ['t a number', { t: 1 }, invalid(invalidMessages.missingType())],
    ['t null', { t: null }, invalid(invalidMessages.missingType())],
    ['t true', { t: true }, invalid(invalidMessages.missingType())],
    ['t an array', { t: ['ping'] }, invalid(invalidMessages.missingType())],
    ['t an object', { t: { t: 'ping' } }, invalid(invalidMessages.missingType())],
    ['t empty', { t: '' }, invalid(invalidMessages.missingType())],
    ['t missing', { p: {} }, invalid(invalidMessages.missingType())],
    ['p a string', { t: 'ping', p: 'x' }, invalid(invalidMessages.payloadNotObject())],
    ['p a number', { t: 'ping', p: 1 }, invalid(invalidMessages.payloadNotObject())],
    ['p true', { t: 'ping', p: true }, invalid(invalidMessages.payloadNotObject())],
    ['p an array', { t: 'ping', p: [] }, invalid(invalidMessages.payloadNotObject())],
    ['p null (as absent)', { t: 'ping', p: null }, pong(null)],
    [
      'p.action a number',
      { t: 'subscription', p: { action: 1, topics: ['a'] } },
      invalid(invalidMessages.badSubscriptionAction()),
    ],
    [
      'p.action null',
      { t: 'subscription', p: { action: null, topics: ['a'] } },
      invalid(invalidMessages.badSubscriptionAction()),
    ],
    [
      'p.action upper case',
      { t: 'subscription', p: { action: 'SUBSCRIBE', topics: ['a'] } },
      invalid(invalidMessages.badSubscriptionAction()),
    ],
    [
      'p.action an array',
      { t: 'subscription', p: { action: ['subscribe'], topics: ['a'] } },
      invalid(invalidMessages.badSubscriptionAction()),
    ],
    ['p.action missing', { t: 'subscription', p: { topics: ['a'] } }, invalid(invalidMessages.badSubscriptionAction())],
    ['p missing on a subscription', { t: 'subscription' }, invalid(invalidMessages.badSubscriptionAction())],
    [
      'p.topics a string',
      { t: 'subscription', p: { action: 'subscribe', topics: 'a' } },
      invalid(invalidMessages.badSubscriptionTopics()),
    ],
    [
      'p.topics a number',
      { t: 'subscription', p: { action: 'subscribe', topics: 1 } },
      invalid(invalidMessages.badSubscriptionTopics()),
    ],
    [
      'p.topics null',
      { t: 'subscription', p: { action: 'subscribe', topics: null } },
      invalid(invalidMessages.badSubscriptionTopics()),
    ],
    [
      'p.topics an object',
      { t: 'subscription', p: { action: 'subscribe', topics: { 0: 'a', length: 1 } } },
      invalid(invalidMessages.badSubscriptionTopics()),
    ],
    [
      'p.topics missing',
      { t: 'subscription', p: { action: 'unsubscribe' } },
      invalid(invalidMessages.badSubscriptionTopics()),
    ],
    [
      'a number among p.topics',
      { t: 'subscription', p: { action: 'subscribe', topics: ['a', 1] } },
      invalid(invalidMessages.badSubscriptionTopics()),
    ],
    [
      'null among p.topics',
      { t: 'subscription', p: { action: 'subscribe', topics: [null] } },
      invalid(invalidMessages.badSubscriptionTopics()),
    ],
    [
      'an array among p.topics',
      { t: 'subscription', p: { action: 'subscribe', topics: [['a']] } },
      invalid(invalidMessages.badSubscriptionTopics()),
    ],
    [
      'an object among p.topics',
      { t: 'subscription', p: { action: 'subscribe', topics: [{}] } },
      invalid(invalidMessages.badSubscriptionTopics()),
    ],
    ['id a number (ignored)', { t: 'ping', id: 1, p: { client_timestamp: 1 } }, pong(1)],
    ['id an object (ignored)', { t: 'ping', id: {}, p: { client_timestamp: 2 } }, pong(2)],
    ['cid an array (ignored)', { t: 'ping', cid: [1], p: { client_timestamp: 3 } }, pong(3)],
    ['cid null (ignored)', { t: 'ping', cid: null, p: { client_timestamp: 4 } }, pong(4)],
    ['c and v of other types (ignored)', { t: 'ping', c: 5, v: 'two', p: { client_timestamp: 5 } }, pong(5)],
    ['the whole frame an array', [{ t: 'ping' }], invalid(invalidMessages.notObject())],
    ['the whole frame a string', 'ping', invalid(invalidMessages.notObject())],
    ['the whole frame null', null, invalid(invalidMessages.notObject())],
    ['an unknown t in mixed case', { t: 'Chat_Message' }, unknownEvent('Chat_Message')],
  ])('answers %s with its documented frame', async (_what, frame, expected) => {
    const client = await connect();
    client.send(JSON.stringify(frame));
    expect(await client.nextJson()).toEqual(expected);
    await client.expectNothing(50);
  });

  it('answers an empty text frame as not JSON', async () => {
    const client = await connect();
    client.socket.send('');
    expect(await client.nextJson()).toEqual(invalid(invalidMessages.notJson()));
  });

  describe('deep nesting and huge arrays (each answered within 2 s, no hang)', () => {
    const deepArray = (depth: number): string => '['.repeat(depth) + ']'.repeat(depth);
    const deepObject = (depth: number): string => '{"a":'.repeat(depth) + '1' + '}'.repeat(depth);

    it.each<[string, () => string, unknown]>([
      [
        'an unterminated 100,000-deep array',
        () => '{"t":"x","p":' + '['.repeat(100_000),
        invalid(invalidMessages.notJson()),
      ],
      [
        'a 100,000-deep array as p',
        () => `{"t":"x","p":${deepArray(100_000)}}`,
        invalid(invalidMessages.payloadNotObject()),
      ],
      ['a 100,000-deep array inside p', () => `{"t":"x","p":{"a":${deepArray(100_000)}}}`, unknownEvent('x')],
      ['a 50,000-deep object inside p', () => `{"t":"x","p":${deepObject(50_000)}}`, unknownEvent('x')],
      [
        'a 100,000-deep array as p.topics',
        () => `{"t":"subscription","p":{"action":"subscribe","topics":${deepArray(100_000)}}}`,
        invalid(invalidMessages.badSubscriptionTopics()),
      ],
      [
        'a 100,000-deep array as p.action',
        () => `{"t":"subscription","p":{"action":${deepArray(100_000)},"topics":[]}}`,
        invalid(invalidMessages.badSubscriptionAction()),
      ],
      [
        '50,000 topic strings in one subscription',
        () =>
          JSON.stringify({
            t: 'subscription',
            p: { action: 'subscribe', topics: Array.from({ length: 50_000 }, (_, i) => `t:${i}`) },
          }),
        invalid('subscription: at most 100 topics per message'),
      ],
      [
        '200,000 numbers as topics',
        () => `{"t":"subscription","p":{"action":"unsubscribe","topics":[${Array(200_000).fill(0).join(',')}]}}`,
        invalid('subscription: at most 100 topics per message'),
      ],
      [
        'a payload with 50,000 keys',
        () => JSON.stringify({ t: 'x', p: Object.fromEntries(Array.from({ length: 50_000 }, (_, i) => [`k${i}`, i])) }),
        unknownEvent('x'),
      ],
    ])('answers %s', async (_what, build, expected) => {
      const client = await connect();
      const text = build();
      expect(Buffer.byteLength(text)).toBeLessThanOrEqual(MAX_MESSAGE_BYTES);
      client.send(text);
      expect(await client.nextJson(2_000)).toEqual(expected);
      // Still answering.
      client.send({ t: 'ping', p: { client_timestamp: 'still-here' } });
      expect(await client.nextJson()).toEqual(pong('still-here'));
    });
  });

  describe('frame size (WSE_MAX_MESSAGE_BYTES 1 MiB)', () => {
    /** An unknown event padded to exactly `bytes` bytes. */
    function padded(bytes: number): string {
      const head = '{"t":"x","p":{"pad":"';
      const tail = '"}}';
      return head + 'a'.repeat(bytes - head.length - tail.length) + tail;
    }

    it('answers a frame of exactly 1 MiB', async () => {
      const client = await connect();
      client.send(padded(MAX_MESSAGE_BYTES));
      expect(await client.nextJson(5_000)).toEqual(unknownEvent('x'));
    });

    it('closes with 1009 on a frame of 1 MiB + 1 byte, text or binary', async () => {
      for (const binary of [false, true]) {
        const client = await connect();
        client.socket.send(Buffer.from(padded(MAX_MESSAGE_BYTES + 1)), { binary });
        expect({ binary, code: (await client.closed(5_000)).code }).toEqual({ binary, code: 1009 });
      }
    });
  });

  describe('prototype-pollution keys', () => {
    it.each<[string, string, (update: Envelope) => void]>([
      [
        '__proto__ in p',
        '{"t":"subscription","p":{"__proto__":{"polluted":1},"action":"subscribe","topics":["a"]}}',
        (update) => expect(update.p.success_topics).toEqual(['a']),
      ],
      [
        'constructor.prototype in p',
        '{"t":"subscription","p":{"constructor":{"prototype":{"polluted":1}},"action":"subscribe","topics":["b"]}}',
        (update) => expect(update.p.success_topics).toEqual(['b']),
      ],
      [
        'prototype in p',
        '{"t":"subscription","p":{"prototype":{"polluted":1},"action":"subscribe","topics":["c"]}}',
        (update) => expect(update.p.success_topics).toEqual(['c']),
      ],
      [
        'prototype names as topics',
        '{"t":"subscription","p":{"action":"subscribe","topics":["__proto__","constructor","prototype","hasOwnProperty","toString"]}}',
        (update) =>
          expect(update.p.success_topics).toEqual([
            '__proto__',
            'constructor',
            'prototype',
            'hasOwnProperty',
            'toString',
          ]),
      ],
    ])('treats %s as plain data', async (_what, text, check) => {
      const client = await connect();
      client.send(text);
      const update = await client.nextEnvelope();
      expect(update.t).toBe('subscription_update');
      check(update);
      expect(({} as Record<string, unknown>).polluted).toBeUndefined();
      expect(Object.prototype).not.toHaveProperty('polluted');
    });

    it.each<[string, string, unknown]>([
      ['a top-level __proto__ carrying t', '{"__proto__":{"t":"ping"}}', invalid(invalidMessages.missingType())],
      [
        'a top-level __proto__ carrying p',
        '{"t":"subscription","__proto__":{"p":{"action":"subscribe","topics":["a"]}}}',
        invalid(invalidMessages.badSubscriptionAction()),
      ],
      ['__proto__ as the event type', '{"t":"__proto__","p":{"__proto__":{"polluted":1}}}', unknownEvent('__proto__')],
      ['constructor as the event type', '{"t":"constructor"}', unknownEvent('constructor')],
      ['hasOwnProperty as the event type', '{"t":"hasOwnProperty"}', unknownEvent('hasOwnProperty')],
      ['toString as the event type', '{"t":"toString"}', unknownEvent('toString')],
      [
        '__proto__ as a client_timestamp',
        '{"t":"ping","p":{"client_timestamp":{"__proto__":{"polluted":1}}}}',
        pong({}),
      ],
    ])('answers %s without reading through the prototype', async (_what, text, expected) => {
      const client = await connect();
      client.send(text);
      const answer = (await client.next()).json as Record<string, unknown>;
      if ((expected as Envelope).t === 'PONG') {
        // The echoed object holds `__proto__` as an own key: JSON keeps it as data.
        expect((answer.p as Record<string, unknown>).client_timestamp).toEqual(
          JSON.parse('{"__proto__":{"polluted":1}}'),
        );
      } else {
        expect(answer).toEqual(expected);
      }
      expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    });

    it('delivers a publish to the topic __proto__ to its subscriber only, and the API finds no connection "constructor"', async () => {
      const client = await connect();
      expect((await client.subscribe(['__proto__'])).p.success_topics).toEqual(['__proto__']);
      const call = async (path: string, body?: unknown) => {
        const response = await fetch(`${server.httpUrl}${path}`, {
          method: body === undefined ? 'GET' : 'POST',
          headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json' },
          body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
          signal: AbortSignal.timeout(5_000),
        });
        return { status: response.status, body: await response.json() };
      };

      expect(await call('/api/publish', '{"topic":"__proto__","data":{"__proto__":{"polluted":1}}}')).toEqual({
        status: 200,
        body: { delivered: 1 },
      });
      expect((await client.next()).text).toBe('{"__proto__":{"polluted":1}}');
      expect(await call('/api/topics/__proto__/subscribers')).toEqual({
        status: 200,
        body: { topic: '__proto__', count: 1 },
      });
      expect(await call('/api/topics/constructor/subscribers')).toEqual({
        status: 200,
        body: { topic: 'constructor', count: 0 },
      });
      for (const id of ['__proto__', 'constructor', 'prototype', 'toString']) {
        expect(await call(`/api/connections/${id}/send`, { data: 1 })).toEqual({
          status: 404,
          body: { error: `No connection ${JSON.stringify(id)} on this instance` },
        });
      }
      expect(await call('/api/publish', '{"__proto__":{"topic":"a","data":1}}')).toEqual({
        status: 400,
        body: { error: 'Field "topic" is required', field: 'topic' },
      });
      expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    });
  });
});

// ---- a crash would end a separate process: the probes that could throw out of a listener ------

describe('hostile frames against the example server process (node dist-examples/server/main.js)', () => {
  let server: ServerProcess | undefined;

  beforeEach(async () => {
    server = await ServerProcess.spawn({});
  }, 30_000);
  afterEach(async () => {
    await server?.stop();
    server = undefined;
  });

  async function healthStatus(process: ServerProcess): Promise<number | string> {
    try {
      const response = await fetch(`${process.httpUrl}/health`, { signal: AbortSignal.timeout(2_000) });
      await response.arrayBuffer();
      return response.status;
    } catch (error) {
      return (error as Error).message;
    }
  }

  it.each<[string, () => string]>([
    [
      'a ping whose client_timestamp is 100,000 arrays deep',
      () => `{"t":"ping","p":{"client_timestamp":${'['.repeat(100_000)}${']'.repeat(100_000)}}}`,
    ],
    [
      'a ping whose client_timestamp is 50,000 objects deep',
      () => `{"t":"ping","p":{"client_timestamp":${'{"a":'.repeat(50_000)}1${'}'.repeat(50_000)}}}`,
    ],
  ])(
    'survives %s: answers it, keeps the connection and stays healthy',
    async (_what, build) => {
      const process = server!;
      const { client } = await TestClient.ready(process.wsUrl);
      try {
        client.send(build());
        // The documented answer is a PONG; a value that cannot be echoed may be answered as invalid.
        const answer = await client
          .nextEnvelope(3_000)
          .catch((error: Error) => ({ t: `no answer (${error.message})` }) as Envelope);
        const state = { running: process.running, health: await healthStatus(process) };
        // On failure, the process's own last words say why.
        expect({ ...state, log: state.running ? '' : process.log.slice(-1_500) }).toEqual({
          running: true,
          health: 200,
          log: '',
        });
        expect(['PONG', 'error']).toContain(answer.t);
        client.send({ t: 'ping', p: { client_timestamp: 'after' } });
        expect(await client.nextJson()).toEqual(pong('after'));
      } finally {
        await client.close();
      }
    },
    30_000,
  );
});

// ---- the HTTP API ------------------------------------------------------------------------------

interface FieldSpec {
  readonly name: string;
  readonly required: boolean;
  readonly valid: (value: unknown) => boolean;
  readonly good: readonly unknown[];
}

interface RouteSpec {
  readonly method: 'GET' | 'POST';
  /** `:id` and `:topic` are filled in per request. */
  readonly path: string;
  readonly fields: readonly FieldSpec[];
  /** Status of a valid request on a known connection. */
  readonly ok: number;
}

const isTopic = (value: unknown): boolean =>
  typeof value === 'string' &&
  value.length > 0 &&
  Buffer.byteLength(value) <= 256 &&
  ![...value].some((c) => c.charCodeAt(0) < 0x20 || (c.charCodeAt(0) >= 0x7f && c.charCodeAt(0) <= 0x9f));
const isStringArray = (value: unknown): boolean => Array.isArray(value) && value.every((v) => typeof v === 'string');

const ANY_DATA: FieldSpec['good'] = [
  null,
  0,
  'text',
  { t: 'x', p: { n: 1 } },
  [1, 'a'],
  true,
  JSON.parse('{"__proto__":{"polluted":1}}'),
];
const ROUTES: readonly RouteSpec[] = [
  {
    method: 'POST',
    path: '/api/publish',
    ok: 200,
    fields: [
      { name: 'topic', required: true, valid: isTopic, good: ['news', 'user:1:events', '*', 'é'.repeat(128)] },
      { name: 'data', required: true, valid: () => true, good: ANY_DATA },
      { name: 'local', required: false, valid: (v) => typeof v === 'boolean', good: [true, false] },
    ],
  },
  {
    method: 'POST',
    path: '/api/broadcast',
    ok: 200,
    fields: [{ name: 'data', required: true, valid: () => true, good: ANY_DATA }],
  },
  {
    method: 'POST',
    path: '/api/connections/:id/send',
    ok: 200,
    fields: [{ name: 'data', required: true, valid: () => true, good: ANY_DATA }],
  },
  {
    method: 'POST',
    path: '/api/connections/:id/subscribe',
    ok: 200,
    fields: [
      { name: 'topics', required: true, valid: isStringArray, good: [[], ['a'], ['a', '', 'b:*', 'x'.repeat(300)]] },
    ],
  },
  {
    method: 'POST',
    path: '/api/connections/:id/unsubscribe',
    ok: 200,
    fields: [{ name: 'topics', required: false, valid: isStringArray, good: [[], ['a'], ['nope']] }],
  },
  { method: 'GET', path: '/api/topics/:topic/subscribers', ok: 200, fields: [] },
  { method: 'GET', path: '/api/connections', ok: 200, fields: [] },
  { method: 'GET', path: '/api/dlq', ok: 200, fields: [] },
  { method: 'POST', path: '/api/dlq/replay', ok: 200, fields: [] },
  { method: 'GET', path: '/api/snapshot', ok: 200, fields: [] },
];

/** Values of every JSON type, hostile ones included, moderately nested. */
const BAD_VALUES: readonly unknown[] = [
  null,
  true,
  0,
  -1,
  1e308,
  '',
  'a'.repeat(300),
  'a\u0000b',
  'line\nbreak',
  [],
  [1, 2],
  [null],
  ['a', 1],
  {},
  { topic: 'news' },
  JSON.parse('{"__proto__":{"polluted":1}}'),
  JSON.parse('['.repeat(30) + '1' + ']'.repeat(30)),
];

interface FuzzRequest {
  method: 'GET' | 'POST';
  path: string;
  headers: Record<string, string>;
  body?: string;
  /** Statuses the contract allows for this request. */
  allowed: number[];
  /** When the answer is 400, `field` must be one of these (empty: no field expected). */
  fields: string[];
}

describe(`the HTTP API under random and ill-typed requests (${REPLAY})`, () => {
  let server: EngineApp;
  let client: TestClient;
  let knownId: string;

  beforeAll(async () => {
    server = await startEngineApp({ apiKey: API_KEY });
    const { client: c, ready } = await TestClient.ready(server.wsUrl);
    client = c;
    knownId = (ready.p.details as { connection_id: string }).connection_id;
  });
  afterAll(async () => {
    await client?.close();
    await eventually(() => server.registry.connectionCount === 0, 5_000, 'every connection to be unregistered');
    await server.close();
  });

  function randomRequest(prng: Prng): FuzzRequest {
    const route = prng.pick(ROUTES);
    const headers: Record<string, string> = { authorization: `Bearer ${API_KEY}` };
    const knownConnection = prng.bool(0.5);
    const id = knownConnection
      ? knownId
      : encodeURIComponent(
          prng.pick(['nope', '__proto__', 'constructor', 'ü', '..', prng.string(prng.int(1, 40), 'abc-_%é\u0000 /')]),
        );
    const badEscape = prng.bool(0.05);
    const topic = badEscape
      ? '%E0%A4%A'
      : encodeURIComponent(prng.pick(['news', '*', '__proto__', '%', prng.string(prng.int(1, 30), 'ab:*?[]\u0001 é')]));
    const path = route.path.replace(':id', id).replace(':topic', topic);
    const unknownId = route.path.includes(':id') && !knownConnection;
    // `/api/connections/../send` is normalized to `/api/send` by the client: no such route.
    if (route.path.includes(':id') && id === '..') {
      return { method: route.method, path, headers, body: '{}', allowed: [404], fields: [] };
    }
    // A path parameter that is not valid percent-encoding cannot be decoded: 400.
    if (badEscape && route.path.includes(':topic')) {
      return { method: route.method, path, headers, allowed: [400], fields: [] };
    }

    if (route.method === 'GET' || route.fields.length === 0) {
      return { method: route.method, path, headers, allowed: [route.ok], fields: [] };
    }
    const shape = prng.int(0, 19);
    // Not an object at all, broken JSON, or another content type.
    if (shape === 0) {
      headers['content-type'] = 'application/json';
      return {
        method: 'POST',
        path,
        headers,
        body: JSON.stringify(prng.pick([[], [1], 'x', 1, null, true])),
        allowed: [400],
        fields: [],
      };
    }
    if (shape === 1) {
      headers['content-type'] = 'application/json';
      // Whatever the mutation left: 400 (broken JSON or a bad field), or the route's own answer.
      const body = mutate(prng, '{"topic":"a","data":{"x":[1,2]},"topics":["a"]}') + prng.pick(['', '{', ']']);
      return { method: 'POST', path, headers, body, allowed: [400, route.ok, 404], fields: [] };
    }
    if (shape === 2) {
      headers['content-type'] = prng.pick([
        'text/plain',
        'application/x-www-form-urlencoded',
        'application/octet-stream',
      ]);
      const allowed = route.fields.some((f) => f.required) ? [400] : unknownId ? [404] : [route.ok];
      return { method: 'POST', path, headers, body: '{"topic":"a","data":1,"topics":["a"]}', allowed, fields: [] };
    }
    // An object with each field absent, valid or of a wrong type, plus stray keys.
    headers['content-type'] = 'application/json';
    const body: Record<string, unknown> = {};
    const wrong: string[] = [];
    for (const field of route.fields) {
      const roll = prng.next();
      if (roll < 0.15) {
        if (field.required) wrong.push(field.name);
        continue;
      }
      const value = roll < 0.6 ? prng.pick(field.good) : prng.pick(BAD_VALUES);
      body[field.name] = value;
      if (!field.valid(value)) wrong.push(field.name);
    }
    for (let i = prng.int(0, 2); i > 0; i--) {
      const key = prng.pick(['extra', '__proto__', 'constructor', 'prototype', 'x']);
      if (!Object.hasOwn(body, key)) setOwn(body, key, prng.pick(BAD_VALUES));
    }
    const allowed = wrong.length > 0 ? (unknownId ? [400, 404] : [400]) : unknownId ? [404] : [route.ok];
    return { method: 'POST', path, headers, body: JSON.stringify(body), allowed, fields: wrong };
  }

  it('never answers 5xx to 2,000 random requests, and each answer is the documented one', async () => {
    const prng = prngFor(5);
    const requests = Array.from({ length: 2_000 }, () => randomRequest(prng));
    const problems: string[] = [];
    const statuses = new Map<number, number>();
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < requests.length) {
        const index = next++;
        const request = requests[index];
        const response = await fetch(`${server.httpUrl}${request.path}`, {
          method: request.method,
          headers: request.headers,
          body: request.body,
          signal: AbortSignal.timeout(10_000),
        });
        const text = await response.text();
        statuses.set(response.status, (statuses.get(response.status) ?? 0) + 1);
        const where = `#${index} ${request.method} ${request.path} ${request.body?.slice(0, 200) ?? ''}`;
        if (!request.allowed.includes(response.status)) {
          problems.push(
            `${where}: expected ${request.allowed.join(' or ')}, got ${response.status} ${text.slice(0, 200)}`,
          );
          continue;
        }
        if (response.status !== 400 || request.fields.length === 0) continue;
        const body = JSON.parse(text) as { error?: unknown; field?: unknown };
        if (typeof body.error !== 'string' || !request.fields.includes(body.field as string)) {
          problems.push(
            `${where}: expected a 400 naming one of ${request.fields.join(', ')}, got ${text.slice(0, 200)}`,
          );
        }
      }
    };
    await Promise.all(Array.from({ length: 16 }, () => worker()));

    expect({ problems: problems.slice(0, 10), problemCount: problems.length }).toEqual({
      problems: [],
      problemCount: 0,
    });
    expect([...statuses.keys()].filter((status) => status >= 500)).toEqual([]);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  }, 120_000);

  it('answers a body over 1 MiB with 413 and malformed JSON with 400, never 5xx', async () => {
    const post = async (body: string): Promise<number> => {
      const response = await fetch(`${server.httpUrl}/api/publish`, {
        method: 'POST',
        headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json' },
        body,
        signal: AbortSignal.timeout(10_000),
      });
      await response.arrayBuffer();
      return response.status;
    };
    expect(await post(JSON.stringify({ topic: 'a', data: 'x'.repeat(MiB) }))).toBe(413);
    expect(await post('{"topic":"a","data":')).toBe(400);
    expect(await post('{"topic":"a","data":' + '['.repeat(100_000))).toBe(400);
    expect(await post('\u0000')).toBe(400);
  });

  it.each([
    ['POST /api/publish', '/api/publish', '{"topic":"a","data":%DEEP%}'],
    ['POST /api/broadcast', '/api/broadcast', '{"data":%DEEP%}'],
    ['POST /api/connections/:id/send', '/api/connections/:id/send', '{"data":%DEEP%}'],
  ])('answers %s with data too deep to serialize as a 400 naming data, not a 500', async (_what, path, template) => {
    const body = template.replace('%DEEP%', '['.repeat(100_000) + ']'.repeat(100_000));
    const response = await fetch(`${server.httpUrl}${path.replace(':id', knownId)}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json' },
      body,
      signal: AbortSignal.timeout(10_000),
    });
    expect({ status: response.status, field: ((await response.json()) as { field?: string }).field }).toEqual({
      status: 400,
      field: 'data',
    });
  });
});

// ---- memory under connection churn -----------------------------------------------------------

describe('memory under connection churn (engine app in-process)', () => {
  let server: EngineApp;

  beforeAll(async () => {
    server = await startEngineApp({ apiKey: API_KEY });
  });
  afterAll(async () => {
    await server.close();
  });

  /** Connect, subscribe to an exact topic and a pattern, disconnect (1000): once per index. */
  function churnOne(i: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const socket = new WebSocket(server.wsUrl);
      const timer = setTimeout(() => {
        socket.terminate();
        reject(new Error(`churn ${i} did not finish within 20 s`));
      }, 20_000);
      let frames = 0;
      socket.on('message', () => {
        frames++;
        if (frames === 1)
          socket.send(
            JSON.stringify({ t: 'subscription', p: { action: 'subscribe', topics: [`churn:${i}`, `churn:${i}:*`] } }),
          );
        else if (frames === 2) socket.close(1000);
      });
      socket.on('error', () => undefined);
      socket.once('close', () => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  async function churn(from: number, count: number, concurrency: number): Promise<void> {
    let next = from;
    const end = from + count;
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (next < end) await churnOne(next++);
      }),
    );
  }

  it('returns to an empty registry and near its baseline memory after 10,000 connect-subscribe-disconnect cycles', async () => {
    const gcAvailable = forceGc();
    await churn(0, 500, 50); // warm-up: JIT, pools and buffers reach their steady size
    await eventually(() => server.registry.connectionCount === 0, 10_000, 'the warm-up connections to be unregistered');
    await settle();
    const baseline = process.memoryUsage();

    const started = Date.now();
    await churn(500, 10_000, 100);
    const churnMs = Date.now() - started;
    await eventually(
      () => server.registry.connectionCount === 0 && server.registry.topicCount === 0,
      10_000,
      'every churned connection and topic to be forgotten',
    );
    await settle(gcAvailable ? 200 : 2_000);
    const after = process.memoryUsage();

    const exposition = parseExposition(await (await fetch(`${server.httpUrl}/metrics`)).text());
    expect({
      connections: server.registry.connectionCount,
      topics: server.registry.topicCount,
      closedNormally: exposition.value('wse_connections_closed_total', { code: '1000' }),
    }).toEqual({ connections: 0, topics: 0, closedNormally: 10_500 });
    const heapGrowth = after.heapUsed - baseline.heapUsed;
    const rssGrowth = after.rss - baseline.rss;
    expect({ heapWithinBound: heapGrowth < (gcAvailable ? 10 : 30) * MiB, heapGrowth, gcAvailable, churnMs }).toEqual({
      heapWithinBound: true,
      heapGrowth,
      gcAvailable,
      churnMs,
    });
    expect({ rssWithinBound: rssGrowth < 64 * MiB, rssGrowth }).toEqual({ rssWithinBound: true, rssGrowth });
  }, 300_000);
});
