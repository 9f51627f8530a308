import { spawn, type ChildProcess } from 'node:child_process';
import { readFile } from 'node:fs/promises';
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

/** How a RedisServer is started beyond the defaults (loopback, persistence off). */
export interface RedisServerSetup {
  /** The port to listen on; a free one by default. */
  readonly port?: number;
  /** Further `redis-server` arguments, after the defaults (e.g. `--cluster-enabled yes`). */
  readonly args?: readonly string[];
  /** The working directory of the process (where relative files such as a cluster config go). */
  readonly cwd?: string;
}

/**
 * A real redis-server on 127.0.0.1 and a free port, persistence off. Outages in tests are real:
 * `stop()` kills the process, `start()` brings it back on the same port, `freeze(ms)` makes it
 * unresponsive (DEBUG SLEEP) while its sockets stay open, and `pause()` / `resume()` stop and
 * continue the process itself (SIGSTOP / SIGCONT): the kernel still accepts connections and
 * buffers what clients write, nothing is answered.
 */
export class RedisServer {
  private process: ChildProcess | undefined;
  private pausedFlag = false;

  private constructor(
    readonly port: number,
    private readonly setup: RedisServerSetup,
  ) {}

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  /** The process id of the running server (undefined while stopped). */
  get pid(): number | undefined {
    return this.process?.exitCode === null ? this.process.pid : undefined;
  }

  /** True between `pause()` and `resume()`. */
  get paused(): boolean {
    return this.pausedFlag;
  }

  static async launch(setup: RedisServerSetup = {}): Promise<RedisServer> {
    const server = new RedisServer(setup.port ?? (await freePort()), setup);
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
        ...(this.setup.args ?? []),
      ],
      { stdio: 'ignore', cwd: this.setup.cwd },
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
    this.pausedFlag = false;
    if (child === undefined || child.exitCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
  }

  /**
   * Stops the process (SIGSTOP) and waits until the kernel reports it stopped: from then on
   * nothing is answered while every socket stays open, as with a Redis stuck in a long fork, a
   * swapped-out host or a VM pause.
   */
  async pause(): Promise<void> {
    const child = this.requireRunning('pause');
    child.kill('SIGSTOP');
    this.pausedFlag = true;
    await this.waitForState(child.pid!, (state) => state === 'T' || state === 't', 'stopped');
  }

  /** Continues a paused process (SIGCONT) and waits until it answers PING again, at most 5 s. */
  async resume(): Promise<void> {
    const child = this.requireRunning('resume');
    child.kill('SIGCONT');
    this.pausedFlag = false;
    const deadline = Date.now() + 5_000;
    while (!(await this.answersPing())) {
      if (Date.now() > deadline) throw new Error(`redis-server on port ${this.port} did not answer PING after SIGCONT`);
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  }

  /** A short-lived client for test commands (PUBLISH, FLUSHALL, DEBUG SLEEP…). */
  async command(...args: (string | number)[]): Promise<unknown> {
    const client = new Redis(this.url, {
      lazyConnect: true,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
      // A paused server accepts the connection (the kernel does) and answers nothing.
      connectTimeout: 5_000,
      commandTimeout: 5_000,
    });
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

  private requireRunning(what: string): ChildProcess {
    const child = this.process;
    if (child === undefined || child.exitCode !== null || child.pid === undefined)
      throw new Error(`cannot ${what} redis-server on port ${this.port}: it is not running`);
    return child;
  }

  /** Polls /proc/<pid>/stat until the state letter satisfies `ok`, at most 2 s. */
  private async waitForState(pid: number, ok: (state: string) => boolean, what: string): Promise<void> {
    const deadline = Date.now() + 2_000;
    for (;;) {
      const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
      // The state follows the command name, which is in parentheses and may contain spaces.
      const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
      if (ok(state)) return;
      if (Date.now() > deadline) throw new Error(`redis-server ${pid} not ${what} after 2 s (state ${state})`);
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  }

  private async answersPing(): Promise<boolean> {
    try {
      return (await this.command('PING')) === 'PONG';
    } catch {
      return false;
    }
  }
}
