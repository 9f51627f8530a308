import calculateSlot from 'cluster-key-slot';

/** Slots of a Redis Cluster. */
export const CLUSTER_SLOTS = 16_384;

let tags: string[] | undefined;

/**
 * One short hash tag per cluster slot: `slotTag(s)` is a string of letters and digits (no braces)
 * whose CRC16 lands on slot `s`, so a key holding `{<slotTag(s)>}` as its hash tag is on slot `s`.
 * The table is made once, on first use: base-36 counters in order until every slot has one
 * (about 90,000 slot computations, some tens of milliseconds; no tag is longer than 4), always
 * the same table.
 */
export function slotTag(slot: number): string {
  tags ??= buildTags();
  return tags[slot];
}

function buildTags(): string[] {
  const table = new Array<string>(CLUSTER_SLOTS);
  let missing = CLUSTER_SLOTS;
  // Bounded: 36^4 candidates are far more than enough (all slots are covered well below 36^4).
  for (let n = 0; missing > 0 && n < 36 ** 4; n++) {
    const tag = n.toString(36);
    const slot = calculateSlot(tag);
    if (table[slot] === undefined) {
      table[slot] = tag;
      missing--;
    }
  }
  if (missing > 0) throw new Error(`no hash tag found for ${missing} cluster slots`);
  return table;
}

/**
 * The two keys of a topic's history in a cluster, on the slot of the topic's channel
 * (`<prefix><topic>`) whatever the topic holds (braces included), so one script on that slot's
 * master can keep the history and SPUBLISH the channel: `<prefix>{<tag>}<topic>:h` and `:m`, the
 * tag being the channel slot's (`slotTag`). Redis hashes a key by the text between its first `{`
 * and the first `}` after it: with a prefix free of `{` that is the tag. A prefix holding a `{`
 * puts the tag first instead (`{<tag>}<prefix><topic>:h`), so the key's first `{` is the tag's.
 */
export function clusterHistoryKeys(prefix: string, topic: string): { stream: string; meta: string } {
  const channel = prefix + topic;
  const tag = `{${slotTag(calculateSlot(channel))}}`;
  const base = prefix.includes('{') ? tag + channel : prefix + tag + topic;
  return { stream: `${base}:h`, meta: `${base}:m` };
}
