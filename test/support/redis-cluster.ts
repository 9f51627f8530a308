import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { RedisServer } from './redis-server.js';

/** One master of a RedisCluster: its server process and its cluster identity. */
export interface ClusterNode {
  /** `127.0.0.1:<port>`, as module options and health bodies name it. */
  readonly address: string;
  readonly port: number;
  /** The node id (`CLUSTER MYID`), kept across restarts by its cluster config file. */
  readonly id: string;
  /** The temporary directory holding the node's cluster config file. */
  readonly dir: string;
  readonly server: RedisServer;
}

/** Redis Cluster's slot count: a key's slot is CRC16(key or its {tag}) mod 16384. */
export const CLUSTER_SLOTS = 16384;

/**
 * A real local Redis Cluster of three masters (no replicas) on free 127.0.0.1 ports, each
 * redis-server in a temporary directory of its own, persistence off, node timeout 1 s and full
 * coverage not required, so the slots of a killed master fail while the other two keep serving.
 * Built the documented way (`redis-cli --cluster create`), then waited for until every node
 * says `cluster_state:ok`, knows the three masters and sees every slot served.
 *
 * Faults are real: `kill` is SIGKILL of the node's process, `restart` brings it back on the
 * same port with the same cluster config file (same id, same slots), `freeze`/`thaw` are
 * SIGSTOP/SIGCONT, and `migrateSlot` moves a slot and its keys with the same commands
 * `redis-cli --cluster reshard` issues (SETSLOT IMPORTING/MIGRATING, MIGRATE, SETSLOT NODE).
 */
export class RedisCluster {
  private readonly clients: Redis[] = [];
  private readonly sharedClients = new Map<ClusterNode, Redis>();

  private constructor(readonly nodes: readonly ClusterNode[]) {}

  /** `host:port` of every master, in start order: what `redis.cluster.nodes` takes. */
  get addresses(): string[] {
    return this.nodes.map((node) => node.address);
  }

  /** Starts three masters, creates the cluster and waits until it serves every slot (at most 20 s). */
  static async launch(masters = 3): Promise<RedisCluster> {
    const nodes: ClusterNode[] = [];
    try {
      for (let i = 0; i < masters; i++) {
        const dir = await mkdtemp(join(tmpdir(), 'wse-cluster-'));
        const server = await RedisServer.launch({
          cwd: dir,
          args: [
            '--cluster-enabled',
            'yes',
            '--cluster-config-file',
            join(dir, 'nodes.conf'),
            '--cluster-node-timeout',
            '1000',
            '--cluster-require-full-coverage',
            'no',
            '--dir',
            dir,
          ],
        });
        if (i === 0) {
          // Sharded pub/sub (SSUBSCRIBE, SPUBLISH, PUBSUB SHARDNUMSUB) arrived in Redis 7.0.
          const version = parseInfo(String(await server.command('INFO', 'server'))).redis_version ?? '0';
          if (Number(version.split('.')[0]) < 7)
            throw new Error(`the cluster suites need redis-server 7.0 or later (sharded pub/sub); found ${version}`);
        }
        const id = String(await server.command('CLUSTER', 'MYID'));
        nodes.push({ address: `127.0.0.1:${server.port}`, port: server.port, id, dir, server });
      }
      await run('redis-cli', [
        '--cluster',
        'create',
        ...nodes.map((node) => node.address),
        '--cluster-replicas',
        '0',
        '--cluster-yes',
      ]);
      const cluster = new RedisCluster(nodes);
      await cluster.waitUntilHealthy(20_000);
      return cluster;
    } catch (error) {
      await Promise.all(nodes.map((node) => node.server.stop()));
      await Promise.all(nodes.map((node) => rm(node.dir, { recursive: true, force: true })));
      throw error;
    }
  }

  /** The node with this address, port or id. */
  node(which: string | number): ClusterNode {
    const found = this.nodes.find((n) => n.address === which || n.port === which || n.id === which);
    if (found === undefined) throw new Error(`no cluster node ${which}`);
    return found;
  }

  /** The slot of a key or channel (`CLUSTER KEYSLOT`, asked of a running node). */
  async slotOf(key: string): Promise<number> {
    return Number(await this.anyRunning().server.command('CLUSTER', 'KEYSLOT', key));
  }

  /** The slots of many keys or channels, in one pipeline. */
  async slotsOf(keys: readonly string[]): Promise<number[]> {
    const pipeline = this.shared(this.anyRunning()).pipeline();
    for (const key of keys) pipeline.call('CLUSTER', 'KEYSLOT', key);
    const answers = (await pipeline.exec()) ?? [];
    return answers.map(([error, slot]) => {
      if (error) throw error;
      return Number(slot);
    });
  }

  /**
   * Which master serves each slot, as a running node sees it (`CLUSTER SLOTS`; `viaNode` by
   * default the first running one). Index = slot; undefined where no master serves it.
   */
  async slotOwners(viaNode: ClusterNode = this.anyRunning()): Promise<(ClusterNode | undefined)[]> {
    const ranges = (await viaNode.server.command('CLUSTER', 'SLOTS')) as [number, number, [string, number, string]][];
    const owners = new Array<ClusterNode | undefined>(CLUSTER_SLOTS).fill(undefined);
    for (const [from, to, [, port]] of ranges) {
      const owner = this.nodes.find((n) => n.port === Number(port));
      for (let slot = from; slot <= to; slot++) owners[slot] = owner;
    }
    return owners;
  }

  /** The master serving `slot`, as a running node sees it. */
  async ownerOfSlot(slot: number, viaNode?: ClusterNode): Promise<ClusterNode> {
    const owner = (await this.slotOwners(viaNode))[slot];
    if (owner === undefined) throw new Error(`no master serves slot ${slot}`);
    return owner;
  }

  /** The master serving the slot of `key` (a key or a shard channel). */
  async ownerOf(key: string): Promise<ClusterNode> {
    return this.ownerOfSlot(await this.slotOf(key));
  }

  /**
   * A plain (non-cluster) ioredis client connected to one node, for test commands there
   * (PUBSUB SHARDNUMSUB, SPUBLISH, INFO). Kept and closed by `stop()`. A command fails after at
   * most 5 s (or at once when the connection drops); the connection comes back after a restart.
   */
  client(node: ClusterNode): Redis {
    const client = new Redis(node.port, '127.0.0.1', {
      maxRetriesPerRequest: 0,
      enableOfflineQueue: true,
      retryStrategy: () => 200,
      connectTimeout: 5_000,
      commandTimeout: 5_000,
    });
    client.on('error', () => undefined);
    this.clients.push(client);
    return client;
  }

  /** One client per node for the rig's own bulk commands, made on first use. */
  private shared(node: ClusterNode): Redis {
    let client = this.sharedClients.get(node);
    if (client === undefined) {
      client = this.client(node);
      this.sharedClients.set(node, client);
    }
    return client;
  }

  /** `PUBSUB SHARDNUMSUB channel` on the master serving the channel's slot: its sharded subscribers. */
  async shardNumSub(channel: string): Promise<number> {
    return this.shardNumSubOn(await this.ownerOf(channel), channel);
  }

  /** `shardNumSub` of many channels: one `CLUSTER SLOTS` and one pipeline per owning node. */
  async shardNumSubs(channels: readonly string[]): Promise<number[]> {
    const slots = await this.slotsOf(channels);
    const owners = await this.slotOwners();
    const counts = new Array<number>(channels.length).fill(0);
    for (const node of this.nodes) {
      const mine = channels.map((_, i) => i).filter((i) => owners[slots[i]] === node);
      if (mine.length === 0) continue;
      const pipeline = this.shared(node).pipeline();
      for (const i of mine) pipeline.call('PUBSUB', 'SHARDNUMSUB', channels[i]);
      const answers = (await pipeline.exec()) ?? [];
      answers.forEach(([error, answer], j) => {
        if (error) throw error;
        counts[mine[j]] = Number((answer as [string, number])[1]);
      });
    }
    return counts;
  }

  /** `PUBSUB SHARDNUMSUB channel` on one given node (0 on a node that does not serve the slot). */
  async shardNumSubOn(node: ClusterNode, channel: string): Promise<number> {
    const answer = (await node.server.command('PUBSUB', 'SHARDNUMSUB', channel)) as [string, number];
    return Number(answer[1]);
  }

  /** `SPUBLISH channel payload` on the master serving the channel: what an outside publisher does. */
  async spublish(channel: string, payload: string): Promise<number> {
    return Number(await (await this.ownerOf(channel)).server.command('SPUBLISH', channel, payload));
  }

  /** Kills a master (SIGKILL) and waits for its exit: every socket to it closes at once. */
  async kill(node: ClusterNode): Promise<void> {
    await node.server.stop();
  }

  /**
   * Starts a killed master again on its port with its cluster config file (same id, same
   * slots), and waits until it and the others agree the cluster is whole again (at most 20 s).
   */
  async restart(node: ClusterNode): Promise<void> {
    await node.server.start();
    await this.waitUntilHealthy(20_000);
  }

  /** Stops a master's process (SIGSTOP): its sockets stay open, nothing is answered. */
  async freeze(node: ClusterNode): Promise<void> {
    await node.server.pause();
  }

  /** Continues a frozen master (SIGCONT) and waits until it answers PING. */
  async thaw(node: ClusterNode): Promise<void> {
    await node.server.resume();
  }

  /**
   * Moves `slot` and the keys in it to `to`, the way `redis-cli --cluster reshard` does:
   * `SETSLOT IMPORTING` on the target, `SETSLOT MIGRATING` on the source, `MIGRATE` of the keys
   * in batches, then `SETSLOT NODE` on the target, the source and every other master. Redis
   * then unsubscribes the sharded subscribers of the slot's channels on the source (an
   * unsolicited `sunsubscribe`). Resolves with the number of keys moved once every master
   * names `to` as the owner (at most 10 s).
   */
  async migrateSlot(slot: number, to: ClusterNode): Promise<number> {
    const from = await this.ownerOfSlot(slot);
    if (from === to) throw new Error(`slot ${slot} is already on ${to.address}`);
    await to.server.command('CLUSTER', 'SETSLOT', slot, 'IMPORTING', from.id);
    await from.server.command('CLUSTER', 'SETSLOT', slot, 'MIGRATING', to.id);
    let moved = 0;
    for (let round = 0; round < 10_000; round++) {
      const keys = (await from.server.command('CLUSTER', 'GETKEYSINSLOT', slot, 100)) as string[];
      if (keys.length === 0) break;
      await from.server.command('MIGRATE', '127.0.0.1', to.port, '', 0, 5_000, 'KEYS', ...keys);
      moved += keys.length;
    }
    for (const node of [to, from, ...this.nodes.filter((n) => n !== to && n !== from)]) {
      if (node.server.pid === undefined) continue;
      await node.server.command('CLUSTER', 'SETSLOT', slot, 'NODE', to.id);
    }
    const deadline = Date.now() + 10_000;
    for (;;) {
      const views = await Promise.all(this.running().map((node) => this.slotOwners(node)));
      if (views.every((owners) => owners[slot] === to)) return moved;
      if (Date.now() > deadline) throw new Error(`slot ${slot} not owned by ${to.address} on every node after 10 s`);
      await sleep(50);
    }
  }

  /**
   * Waits until every running master says `cluster_state:ok`, knows every master and sees all
   * 16384 slots served (after a kill: the ones of the running masters), at most `timeoutMs`.
   */
  async waitUntilHealthy(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const infos = await Promise.all(
        this.running().map(async (node) => parseInfo(String(await node.server.command('CLUSTER', 'INFO')))),
      );
      const whole = this.running().length === this.nodes.length;
      const ok = infos.every(
        (info) =>
          info.cluster_state === 'ok' &&
          Number(info.cluster_known_nodes) === this.nodes.length &&
          (!whole || Number(info.cluster_slots_ok) === CLUSTER_SLOTS),
      );
      if (ok) return;
      const last = JSON.stringify(
        infos.map((info) => [info.cluster_state, info.cluster_known_nodes, info.cluster_slots_ok]),
      );
      if (Date.now() > deadline)
        throw new Error(`Redis Cluster not healthy within ${timeoutMs} ms (state, known nodes, slots ok: ${last})`);
      await sleep(50);
    }
  }

  /** Closes the helper clients, kills every master and removes their directories. */
  async stop(): Promise<void> {
    this.sharedClients.clear();
    await Promise.all(this.clients.splice(0).map(closeClient));
    await Promise.all(this.nodes.map((node) => node.server.stop()));
    await Promise.all(this.nodes.map((node) => rm(node.dir, { recursive: true, force: true })));
  }

  /** The masters that answer: running, neither killed nor frozen. */
  running(): ClusterNode[] {
    return this.nodes.filter((node) => node.server.pid !== undefined && !node.server.paused);
  }

  private anyRunning(): ClusterNode {
    const node = this.running()[0];
    if (node === undefined) throw new Error('no cluster node is running');
    return node;
  }
}

/** Disconnects a client and waits (at most 3 s) until its socket is closed. */
export function closeClient(client: Redis): Promise<void> {
  if (client.status === 'end') return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, 3_000);
    client.once('end', () => {
      clearTimeout(timer);
      resolve();
    });
    client.disconnect();
  });
}

/** `INFO`-style `key:value` lines as an object. */
export function parseInfo(text: string): Record<string, string> {
  const fields: Record<string, string> = {};
  for (const line of text.split(/\r?\n/)) {
    const colon = line.indexOf(':');
    if (colon > 0) fields[line.slice(0, colon)] = line.slice(colon + 1);
  }
  return fields;
}

/** Runs a command to completion (at most 30 s), failing with its output. */
function run(command: string, args: readonly string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(command, args, { timeout: 30_000 }, (error, stdout, stderr) => {
      if (error) reject(new Error(`${command} ${args.join(' ')} failed: ${error.message}\n${stdout}\n${stderr}`));
      else resolve(stdout);
    });
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
