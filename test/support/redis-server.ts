import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { Redis } from 'ioredis';

/** A free TCP port on 127.0.0.1 (bound, then released). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/**
 * A real redis-server on 127.0.0.1 and a free port, persistence off. Outages in tests are real:
 * `stop()` kills the process, `start()` brings it back on the same port, `freeze(ms)` makes it
 * unresponsive (DEBUG SLEEP) while its sockets stay open.
 */
export class RedisServer {
  private process: ChildProcess | undefined;

  private constructor(readonly port: number) {}

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  static async launch(): Promise<RedisServer> {
    const server = new RedisServer(await freePort());
    await server.start();
    return server;
  }

  /** Starts (or restarts) the server and waits until it answers PING, at most 5 s. */
  async start(): Promise<void> {
    const child = spawn(
      'redis-server',
      [
        '--port',
        String(this.port),
        '--bind',
        '127.0.0.1',
        '--save',
        '',
        '--appendonly',
        'no',
        '--enable-debug-command',
        'local',
      ],
      { stdio: 'ignore' },
    );
    this.process = child;
    const deadline = Date.now() + 5_000;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`redis-server exited with ${child.exitCode} on port ${this.port}`);
      if (await this.answersPing()) return;
      if (Date.now() > deadline) throw new Error(`redis-server on port ${this.port} did not answer PING within 5 s`);
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  }

  /** Kills the server (SIGKILL: an abrupt outage, not a polite shutdown) and waits for its exit. */
  async stop(): Promise<void> {
    const child = this.process;
    this.process = undefined;
    if (child === undefined || child.exitCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
  }

  /** A short-lived client for test commands (PUBLISH, FLUSHALL, DEBUG SLEEP…). */
  async command(...args: (string | number)[]): Promise<unknown> {
    const client = new Redis(this.url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    client.on('error', () => undefined);
    try {
      await client.connect();
      return await client.call(String(args[0]), ...args.slice(1).map(String));
    } finally {
      client.disconnect();
    }
  }

  /** Makes the server unresponsive for `ms` (DEBUG SLEEP) without closing any socket. */
  freeze(ms: number): void {
    void this.command('DEBUG', 'SLEEP', (ms / 1000).toFixed(3)).catch(() => undefined);
  }

  private async answersPing(): Promise<boolean> {
    try {
      return (await this.command('PING')) === 'PONG';
    } catch {
      return false;
    }
  }
}
