import { describe, expect, it } from '@jest/globals';
import calculateSlot from 'cluster-key-slot';
import { historyKeys } from './history-scripts.js';
import { CLUSTER_SLOTS, clusterHistoryKeys, slotTag } from './slot-tags.js';

describe('slotTag', () => {
  it('gives every slot 0..16383 a tag of at most 4 letters or digits that hashes to it', () => {
    const wrong: number[] = [];
    const seen = new Set<string>();
    for (let slot = 0; slot < CLUSTER_SLOTS; slot++) {
      const tag = slotTag(slot);
      if (!/^[0-9a-z]{1,4}$/.test(tag) || calculateSlot(tag) !== slot || calculateSlot(`x{${tag}}y`) !== slot)
        wrong.push(slot);
      seen.add(tag);
    }
    expect(wrong).toEqual([]);
    expect(seen.size).toBe(CLUSTER_SLOTS);
  });
});

describe('clusterHistoryKeys', () => {
  const topics = [
    'chat:lobby',
    'a',
    '',
    '{chat}:room',
    'room}{x',
    '}',
    '{',
    '{}',
    'x{}y',
    'a{b}c{d}e',
    'émoji:🎉',
    'with space',
    ...Array.from({ length: 2000 }, (_, i) => `t:${i}`),
  ];

  it.each(['wse:', 'app{1}:', '{', 'p}', 'a{b', '}{'])(
    'puts both keys of any topic on the slot of its channel (prefix %j), braces in the topic or not',
    (prefix) => {
      const wrong = topics.filter((topic) => {
        const { stream, meta } = clusterHistoryKeys(prefix, topic);
        const slot = calculateSlot(prefix + topic);
        return calculateSlot(stream) !== slot || calculateSlot(meta) !== slot || stream === meta;
      });
      expect(wrong).toEqual([]);
    },
  );

  it('keeps the prefix first when it holds no brace, and ends in :h and :m', () => {
    const { stream, meta } = clusterHistoryKeys('wse:', 'chat:{lobby}');
    const tag = slotTag(calculateSlot('wse:chat:{lobby}'));
    expect(stream).toBe(`wse:{${tag}}chat:{lobby}:h`);
    expect(meta).toBe(`wse:{${tag}}chat:{lobby}:m`);
  });

  it('gives different topics different keys, and leaves the standalone keys as they were', () => {
    expect(clusterHistoryKeys('wse:', 'a').stream).not.toBe(clusterHistoryKeys('wse:', 'b').stream);
    expect(historyKeys('wse:', 'chat:lobby')).toEqual({ stream: 'wse:{chat:lobby}:h', meta: 'wse:{chat:lobby}:m' });
  });
});
