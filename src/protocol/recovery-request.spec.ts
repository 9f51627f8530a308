import { describe, expect, it } from '@jest/globals';
import { recoveryInputMessages } from './protocol.messages.js';
import { parseRecoveryRequest } from './recovery-request.js';

function parsed(p: Record<string, unknown>, topics: string[] = ['a', 'b']) {
  const result = parseRecoveryRequest(p, topics, 10);
  if (!result.ok) throw new Error(result.message);
  return result.request;
}

describe('parseRecoveryRequest', () => {
  it('asks nothing without recover or recovery', () => {
    expect(parsed({})).toMatchObject({ wanted: false });
  });

  it('reads the positions of listed topics', () => {
    const request = parsed({ recover: true, recovery: { a: { epoch: 'e1', offset: 4 } } });
    expect(request.wanted).toBe(true);
    expect([...request.positions]).toEqual([['a', { epoch: 'e1', offset: 4 }]]);
    expect(request.invalid.size).toBe(0);
    expect(request.unrequested).toEqual([]);
  });

  it('takes positions without recover as a recovery request', () => {
    expect(parsed({ recovery: { b: { epoch: 'e', offset: 0 } } }).positions.get('b')).toEqual({
      epoch: 'e',
      offset: 0,
    });
  });

  it('asks nothing with recover: false, whatever the positions', () => {
    expect(parsed({ recover: false, recovery: { a: { epoch: 'e', offset: 1 } } })).toMatchObject({ wanted: false });
  });

  it('asks to recover without positions when recover is true alone', () => {
    const request = parsed({ recover: true });
    expect(request.wanted).toBe(true);
    expect(request.positions.size).toBe(0);
  });

  it.each([
    [{ epoch: 'e', offset: -1 }, recoveryInputMessages.badOffset()],
    [{ epoch: 'e', offset: 1.5 }, recoveryInputMessages.badOffset()],
    [{ epoch: 'e', offset: '3' }, recoveryInputMessages.badOffset()],
    [{ epoch: 'e', offset: 2 ** 60 }, recoveryInputMessages.badOffset()],
    [{ epoch: 'e' }, recoveryInputMessages.badOffset()],
    [{ epoch: '', offset: 1 }, recoveryInputMessages.badEpoch()],
    [{ epoch: 7, offset: 1 }, recoveryInputMessages.badEpoch()],
    [{ offset: 1 }, recoveryInputMessages.badEpoch()],
    ['e:1', recoveryInputMessages.positionNotObject()],
    [[1, 2], recoveryInputMessages.positionNotObject()],
    [null, recoveryInputMessages.positionNotObject()],
  ])('marks the position %j invalid: %s', (position, reason) => {
    const request = parsed({ recover: true, recovery: { a: position, b: { epoch: 'e', offset: 2 } } });
    expect([...request.invalid]).toEqual([['a', reason]]);
    expect([...request.positions.keys()]).toEqual(['b']);
  });

  it.each([['yes'], [1], [null]])('marks every topic invalid for recover: %j', (recover) => {
    const request = parsed({ recover, recovery: { a: { epoch: 'e', offset: 1 } } });
    expect([...request.invalid]).toEqual([
      ['a', recoveryInputMessages.recoverNotBoolean()],
      ['b', recoveryInputMessages.recoverNotBoolean()],
    ]);
    expect(request.positions.size).toBe(0);
  });

  it.each([['text'], [[{ epoch: 'e', offset: 1 }]], [5]])('marks every topic invalid for recovery: %j', (recovery) => {
    const request = parsed({ recover: true, recovery });
    expect([...request.invalid.values()]).toEqual([
      recoveryInputMessages.recoveryNotObject(),
      recoveryInputMessages.recoveryNotObject(),
    ]);
  });

  it('lists positions of topics the request does not subscribe', () => {
    const request = parsed({
      recover: true,
      recovery: { zzz: { epoch: 'e', offset: 1 }, a: { epoch: 'e', offset: 1 } },
    });
    expect(request.unrequested).toEqual(['zzz']);
    expect([...request.positions.keys()]).toEqual(['a']);
  });

  it('refuses more positions than the limit, before looking at them', () => {
    const recovery = Object.fromEntries(Array.from({ length: 11 }, (_, i) => [`t${i}`, {}]));
    expect(parseRecoveryRequest({ recover: true, recovery }, ['a'], 10)).toEqual({
      ok: false,
      message: recoveryInputMessages.tooManyPositions(10),
    });
  });

  it('ignores inherited keys such as __proto__ (JSON.parse makes it an own key, which is then just a topic)', () => {
    const p = JSON.parse('{"recover":true,"recovery":{"__proto__":{"epoch":"e","offset":1}}}') as Record<
      string,
      unknown
    >;
    const request = parsed(p, ['__proto__']);
    expect(request.positions.get('__proto__')).toEqual({ epoch: 'e', offset: 1 });
  });
});
