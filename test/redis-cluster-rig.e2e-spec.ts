import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { CLUSTER_SLOTS, parseInfo, RedisCluster } from './support/redis-cluster.js';

/**
 * The local Redis Cluster the cluster suites run on (test/support/redis-cluster.ts): three real
 * masters sharing the slots, a slot migration that moves the slot and its keys, a master killed
 * and restarted with its identity and slots.
 */
describe('the local 3-master Redis Cluster', () => {
  let cluster: RedisCluster;

  beforeAll(async () => {
    cluster = await RedisCluster.launch();
  }, 30_000);
  afterAll(async () => {
    await cluster?.stop();
  });

  it('has three masters on loopback ports that share all 16384 slots', async () => {
    expect(cluster.addresses).toEqual(cluster.nodes.map((n) => `127.0.0.1:${n.port}`));
    const owners = await cluster.slotOwners();
    const perNode = cluster.nodes.map((node) => owners.filter((o) => o === node).length);
    expect(perNode.reduce((a, b) => a + b, 0)).toBe(CLUSTER_SLOTS);
    for (const count of perNode) expect(count).toBeGreaterThan(5000);
    for (const node of cluster.nodes) {
      const info = parseInfo(String(await node.server.command('INFO', 'replication')));
      expect(info.role).toBe('master');
    }
  });

  it("names the owner of a channel's slot: SPUBLISH there reaches a sharded subscriber, elsewhere it is MOVED", async () => {
    const channel = 'rig:owner';
    const slot = await cluster.slotOf(channel);
    const owner = await cluster.ownerOfSlot(slot);
    const subscriber = cluster.client(owner);
    const received: string[] = [];
    subscriber.on('smessage', (_channel: string, message: string) => received.push(message));
    await subscriber.ssubscribe(channel);
    expect(await cluster.shardNumSub(channel)).toBe(1);
    for (const other of cluster.nodes.filter((n) => n !== owner)) {
      expect(await cluster.shardNumSubOn(other, channel)).toBe(0);
      await expect(other.server.command('SPUBLISH', channel, 'x')).rejects.toThrow(`MOVED ${slot}`);
    }
    expect(await cluster.spublish(channel, 'hello')).toBe(1);
    const deadline = Date.now() + 2_000;
    while (received.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    expect(received).toEqual(['hello']);
    subscriber.disconnect();
  });

  it('migrates a slot with its keys to another master, every master agreeing on the new owner', async () => {
    const key = 'rig:{migrate}:key';
    const slot = await cluster.slotOf(key);
    const from = await cluster.ownerOfSlot(slot);
    const to = cluster.nodes.find((n) => n !== from)!;
    for (let i = 0; i < 150; i++) await from.server.command('SET', `rig:{migrate}:${i}`, String(i));

    const moved = await cluster.migrateSlot(slot, to);

    expect(moved).toBe(150);
    for (const node of cluster.nodes) expect(await cluster.ownerOfSlot(slot, node)).toBe(to);
    expect(Number(await to.server.command('CLUSTER', 'COUNTKEYSINSLOT', slot))).toBe(150);
    expect(Number(await from.server.command('CLUSTER', 'COUNTKEYSINSLOT', slot))).toBe(0);
    expect(await to.server.command('GET', 'rig:{migrate}:149')).toBe('149');
    await expect(from.server.command('GET', 'rig:{migrate}:149')).rejects.toThrow(`MOVED ${slot}`);
    await cluster.migrateSlot(slot, from);
    expect(await cluster.ownerOfSlot(slot)).toBe(from);
  });

  it('unsubscribes the sharded subscribers of a migrated slot (the unsolicited sunsubscribe ioredis reports as "moved")', async () => {
    const channel = 'rig:moving';
    const slot = await cluster.slotOf(channel);
    const from = await cluster.ownerOfSlot(slot);
    const to = cluster.nodes.find((n) => n !== from)!;
    const subscriber = cluster.client(from);
    let moved = 0;
    subscriber.on('moved', () => moved++);
    await subscriber.ssubscribe(channel);
    expect(await cluster.shardNumSubOn(from, channel)).toBe(1);

    await cluster.migrateSlot(slot, to);

    const deadline = Date.now() + 2_000;
    while (moved === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    expect(moved).toBe(1);
    expect(await cluster.shardNumSubOn(from, channel)).toBe(0);
    expect(await cluster.shardNumSubOn(to, channel)).toBe(0);
    subscriber.disconnect();
    await cluster.migrateSlot(slot, from);
  });

  it('kills a master (its slots fail, the others keep serving) and restarts it with its id and slots', async () => {
    const [victim, survivor] = cluster.nodes;
    const before = (await cluster.slotOwners()).filter((o) => o === victim).length;
    const pid = victim.server.pid;

    await cluster.kill(victim);

    expect(victim.server.pid).toBeUndefined();
    expect(() => process.kill(pid!, 0)).toThrow();
    expect(await cluster.running()).not.toContain(victim);
    const survivorOwner = await cluster.ownerOf('rig:survivor');
    if (survivorOwner !== victim) expect(await cluster.spublish('rig:survivor', 'x')).toBe(0);
    // The others mark it failed after the node timeout (1 s) and still answer for their slots.
    const deadline = Date.now() + 10_000;
    let flags = '';
    while (!flags.includes('fail') && Date.now() < deadline) {
      const line = String(await survivor.server.command('CLUSTER', 'NODES'))
        .split('\n')
        .find((l) => l.startsWith(victim.id));
      flags = line?.split(' ')[2] ?? '';
      if (!flags.includes('fail')) await new Promise((r) => setTimeout(r, 100));
    }
    expect(flags).toMatch(/fail/);
    expect(parseInfo(String(await survivor.server.command('CLUSTER', 'INFO'))).cluster_state).toBe('ok');

    await cluster.restart(victim);

    expect(victim.server.pid).not.toBe(pid);
    expect(String(await victim.server.command('CLUSTER', 'MYID'))).toBe(victim.id);
    expect((await cluster.slotOwners()).filter((o) => o === victim).length).toBe(before);
  }, 30_000);

  it('freezes a master (SIGSTOP) and thaws it (SIGCONT)', async () => {
    const node = cluster.nodes[2];
    await cluster.freeze(node);
    expect(cluster.running()).not.toContain(node);
    await cluster.thaw(node);
    expect(cluster.running()).toContain(node);
    expect(await node.server.command('PING')).toBe('PONG');
  });
});
