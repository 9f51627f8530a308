import { describe, expect, it } from '@jest/globals';
import {
  errorFrame,
  systemEnvelope,
  systemFrame,
  SystemFrames,
  templateSlot,
  textFrame,
  textFrameOf,
} from './outbound-frame.js';

describe('textFrame', () => {
  it.each([
    [0, 2, [0x81, 0]],
    [1, 2, [0x81, 1]],
    [125, 2, [0x81, 125]],
    [126, 4, [0x81, 126, 0x00, 0x7e]],
    [65_535, 4, [0x81, 126, 0xff, 0xff]],
    [65_536, 10, [0x81, 127, 0, 0, 0, 0, 0x00, 0x01, 0x00, 0x00]],
    [70_000, 10, [0x81, 127, 0, 0, 0, 0, 0x00, 0x01, 0x11, 0x70]],
  ])('frames a %i-byte payload with a %i-byte header', (length, headerLength, header) => {
    const payload = Buffer.alloc(length, 0x61);
    const frame = textFrame(payload);
    expect(frame.length).toBe(headerLength + length);
    expect([...frame.subarray(0, headerLength)]).toEqual(header);
    expect(frame.subarray(headerLength).equals(payload)).toBe(true);
  });

  it('marks the frame final, text, and unmasked', () => {
    const frame = textFrame(Buffer.from('x'));
    expect(frame[0] & 0x80).toBe(0x80); // FIN
    expect(frame[0] & 0x70).toBe(0); // RSV1-3: no compression
    expect(frame[0] & 0x0f).toBe(0x1); // opcode: text
    expect(frame[1] & 0x80).toBe(0); // MASK bit clear
  });

  it('copies the payload bytes exactly, multi-byte UTF-8 included', () => {
    const payload = Buffer.from('{"msg":"héllo €"}', 'utf8');
    const frame = textFrame(payload);
    expect(frame[1]).toBe(payload.length);
    expect(frame.subarray(2).toString('utf8')).toBe('{"msg":"héllo €"}');
  });

  it('does not keep a reference to the payload', () => {
    const payload = Buffer.from('abc');
    const frame = textFrame(payload);
    payload[0] = 0x7a;
    expect(frame.subarray(2).toString()).toBe('abc');
  });
});

describe('system frames', () => {
  it('wraps a payload in the WSE envelope', () => {
    expect(systemEnvelope('ping', { server_time: 't' })).toEqual({
      c: 'WSE',
      t: 'ping',
      p: { server_time: 't' },
      v: 1,
    });
  });

  it('frames the envelope as JSON text', () => {
    const frame = systemFrame('ping', { server_time: 't' });
    expect(frame.subarray(2).toString()).toBe('{"c":"WSE","t":"ping","p":{"server_time":"t"},"v":1}');
    expect(frame[1]).toBe(frame.length - 2);
  });

  it('builds an error frame with code, message and extra fields', () => {
    const frame = errorFrame('INVALID_MESSAGE', 'Frame is not valid JSON', { ref: 'x' });
    expect(frame.subarray(2).toString()).toBe(
      '{"c":"WSE","t":"error","p":{"code":"INVALID_MESSAGE","message":"Frame is not valid JSON","ref":"x"},"v":1}',
    );
  });
});

describe('SystemFrames', () => {
  const at = new Date('2026-12-01T10:00:00.000Z');
  let ids = 0;
  const newId = (): string => `id-${++ids}`;
  const body = (frame: Buffer): string => frame.subarray(2).toString();

  it('adds nothing by default', () => {
    expect(body(new SystemFrames(false, false, newId).frame('ping', { a: 1 }))).toBe(
      '{"c":"WSE","t":"ping","p":{"a":1},"v":1}',
    );
  });

  it('puts id and ts between t and p, a fresh id per frame', () => {
    ids = 0;
    const frames = new SystemFrames(true, true, newId, () => at);
    expect(body(frames.frame('PONG', { a: 1 }))).toBe(
      '{"c":"WSE","t":"PONG","id":"id-1","ts":"2026-12-01T10:00:00.000Z","p":{"a":1},"v":1}',
    );
    expect(body(frames.error('X', 'm'))).toBe(
      '{"c":"WSE","t":"error","id":"id-2","ts":"2026-12-01T10:00:00.000Z","p":{"code":"X","message":"m"},"v":1}',
    );
  });

  it('keeps "t":"PONG" within the first 25 characters, where WSE\'s Python client looks for it', () => {
    const text = body(new SystemFrames(true, true, newId).frame('PONG', {}));
    expect(text.slice(0, 25)).toContain('"t":"PONG"');
  });

  it('takes ts from the time the frame describes when given', () => {
    const frames = new SystemFrames(false, true, newId, () => new Date(0));
    expect(body(frames.frame('ping', {}, at))).toBe(
      '{"c":"WSE","t":"ping","ts":"2026-12-01T10:00:00.000Z","p":{},"v":1}',
    );
  });

  it('adds only id when only id is on', () => {
    ids = 0;
    expect(body(new SystemFrames(true, false, newId).frame('ping', {}))).toBe(
      '{"c":"WSE","t":"ping","id":"id-1","p":{},"v":1}',
    );
  });
});

describe('textFrameOf', () => {
  it.each([0, 1, 125, 126, 65_535, 65_536])('frames a %i-character text as textFrame frames its bytes', (length) => {
    const text = 'a'.repeat(length);
    expect(textFrameOf(text).equals(textFrame(Buffer.from(text)))).toBe(true);
  });

  it('measures and encodes multi-byte UTF-8 (the header counts bytes, not characters)', () => {
    const text = `{"msg":"héllo € ${'𝄞'.repeat(40)}"}`;
    const frame = textFrameOf(text);
    expect(frame.equals(textFrame(Buffer.from(text, 'utf8')))).toBe(true);
    expect(frame[1]).toBe(126);
  });
});

describe('SystemFrames.template', () => {
  const FEATURES = { subscriptions: true, redis: false, recovery: true };
  const readyPayload = (id: unknown, time: unknown, user: unknown): object => ({
    message: 'Connection established',
    details: { version: 1, features: FEATURES, connection_id: id, server_time: time, user_id: user },
  });
  const TIME = '2026-12-02T13:45:00.123Z';

  it.each([
    ['a user id', 'user-42'],
    ['no user (null)', null],
    ['quotes, backslashes and control characters', 'a"b\\c\n\u0001</script>'],
    ['multi-byte UTF-8', 'Jürgen €𝄞'],
    ['an empty string', ''],
  ])('fills in %s exactly as JSON.stringify writes the whole frame', (_name, user) => {
    const frames = new SystemFrames(false, false, () => 'unused');
    const template = frames.template(
      'server_ready',
      readyPayload(templateSlot(0), templateSlot(1), templateSlot(2)),
      3,
    );
    const id = '6f1c2a8e-7d7e-4a51-9f0b-1d2e3f405162';
    const filled = template.frame([id, TIME, user]);
    expect(filled.equals(frames.frame('server_ready', readyPayload(id, TIME, user)))).toBe(true);
    expect(JSON.parse(filled.subarray(filled[1] === 126 ? 4 : 2).toString('utf8'))).toEqual(
      JSON.parse(JSON.stringify(systemEnvelope('server_ready', readyPayload(id, TIME, user)))),
    );
  });

  it.each([
    [true, false],
    [false, true],
    [true, true],
  ])('adds id %s and ts %s per frame, as frame() does', (withId, withTs) => {
    let ids = 0;
    const clock = new Date('2026-12-02T10:00:00.000Z');
    const made = new SystemFrames(
      withId,
      withTs,
      () => `id-${++ids}`,
      () => clock,
    );
    const template = made.template('server_ready', readyPayload(templateSlot(0), templateSlot(1), templateSlot(2)), 3);
    const first = template.frame(['c1', TIME, 'u']);
    const second = template.frame(['c2', TIME, null]);
    ids = 0;
    expect(first.equals(made.frame('server_ready', readyPayload('c1', TIME, 'u')))).toBe(true);
    expect(second.equals(made.frame('server_ready', readyPayload('c2', TIME, null)))).toBe(true);
  });

  it('refuses a payload without each slot exactly once, and a wrong number of values', () => {
    const frames = new SystemFrames(false, false, () => 'unused');
    expect(() => frames.template('x', { a: templateSlot(0) }, 2)).toThrow(/exactly once/);
    expect(() => frames.template('x', { a: templateSlot(0), b: templateSlot(0) }, 1)).toThrow(/exactly once/);
    expect(() => frames.template('x', { a: templateSlot(1), b: templateSlot(0) }, 2)).toThrow(/exactly once/);
    expect(() => frames.template('x', { a: templateSlot(0) }, 1).frame([])).toThrow(/1 values expected/);
  });
});
