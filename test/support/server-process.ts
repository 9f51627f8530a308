import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { freePort } from './redis-server.js';

/** The project root and the built example server (`npm run build`, run by `pretest`). */
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const MAIN = fileURLToPath(new URL('../../dist-examples/server/main.js', import.meta.url));

/** Output kept per process for failure messages, bounded. */
const MAX_OUTPUT_CHARS = 20_000;

/**
 * The example server (`node dist-examples/server/main.js`) as a separate OS process, as `npm start` runs it:
 * configured only through the contract's environment variables, on 127.0.0.1 and a free port.
 * Two of these on one Redis are two real instances: no shared memory, no shared event loop.
 */
export class ServerProcess {
  /** `http://127.0.0.1:<port>` */
  readonly httpUrl: string;
  /** `ws://127.0.0.1:<port><WSE_PATH>` */
  readonly wsUrl: string;
  private output = '';
  private readonly exited: Promise<number | null>;

  private constructor(
    private readonly child: ChildProcess,
    readonly port: number,
    wsPath: string,
  ) {
    this.httpUrl = `http://127.0.0.1:${port}`;
    this.wsUrl = `ws://127.0.0.1:${port}${wsPath}`;
    const keep = (chunk: Buffer): void => {
      this.output = (this.output + chunk.toString()).slice(-MAX_OUTPUT_CHARS);
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    this.exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
  }

  /** The process id, for diagnostics. */
  get pid(): number | undefined {
    return this.child.pid;
  }

  /** What the process printed so far (last 20,000 characters). */
  get log(): string {
    return this.output;
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /**
   * Spawns `node dist-examples/server/main.js` with `env` (the contract's variable names; PORT and HOST are set
   * here) and waits until `GET /health` answers `expectStatus` (200 by default: listening and,
   * with REDIS_URL, delivering through Redis), at most `timeoutMs`.
   */
  static async spawn(
    env: Record<string, string>,
    {
      expectStatus = 200,
      timeoutMs = 15_000,
      port: fixedPort,
    }: {
      expectStatus?: number;
      timeoutMs?: number;
      /** A port the server had before (to restart it under an open page); a free one by default. */
      port?: number;
    } = {},
  ): Promise<ServerProcess> {
    if (!existsSync(MAIN)) throw new Error(`${MAIN} is missing: run npm run build first (npm test does it in pretest)`);
    const port = fixedPort ?? (await freePort());
    // A clean environment: only what the process needs to run plus the variables under test, so
    // nothing from the test runner's own environment (NODE_OPTIONS, a stray REDIS_URL) leaks in.
    const childEnv: Record<string, string> = {
      PATH: process.env.PATH ?? '',
      // Every topic open unless the test names WSE_SUBSCRIBE_ALLOW (see OPEN_TOPICS in app.ts).
      WSE_SUBSCRIBE_ALLOW: '*',
      ...env,
      PORT: String(port),
      HOST: '127.0.0.1',
    };
    const child = spawn(process.execPath, [MAIN], { cwd: ROOT, env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] });
    const server = new ServerProcess(child, port, env.WSE_PATH ?? '/wse');
    try {
      await server.waitForHealth(expectStatus, timeoutMs);
    } catch (error) {
      await server.stop();
      throw new Error(`${(error as Error).message}\n--- server output ---\n${server.log}`, { cause: error });
    }
    return server;
  }

  /** Polls `GET /health` until it answers `status`, at most `timeoutMs`. */
  async waitForHealth(status: number, timeoutMs: number): Promise<void> {
    let last = 'no answer';
    await waitUntil(
      async () => {
        if (!this.running)
          throw new Error(`server process exited with ${this.child.exitCode ?? this.child.signalCode}`);
        try {
          const response = await fetch(`${this.httpUrl}/health`, { signal: AbortSignal.timeout(1_000) });
          await response.arrayBuffer();
          last = `HTTP ${response.status}`;
          return response.status === status;
        } catch (error) {
          last = (error as Error).message;
          return false;
        }
      },
      timeoutMs,
      () => `GET /health to answer ${status} on port ${this.port} (last: ${last})`,
    );
  }

  /**
   * Stops the process: SIGTERM (the app's shutdown hooks run), then SIGKILL if it has not exited
   * within `graceMs`. Resolves with the exit code (null when it was killed by a signal).
   */
  async stop(graceMs = 5_000): Promise<number | null> {
    if (!this.running) return this.child.exitCode;
    this.child.kill('SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    const killed = new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        if (this.running) this.child.kill('SIGKILL');
        resolve();
      }, graceMs);
    });
    await Promise.race([this.exited, killed]);
    clearTimeout(timer);
    return this.exited;
  }
}

/**
 * Polls an async `condition` every 20 ms until it resolves true, failing after `timeoutMs`.
 * A condition that throws fails at once (e.g. the process under test died).
 */
export async function waitUntil(
  condition: () => Promise<boolean>,
  timeoutMs: number,
  what: string | (() => string),
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${typeof what === 'string' ? what : what()}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
