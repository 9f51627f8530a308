import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { freePort } from './redis-server.js';
import { waitUntil } from './server-process.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const MAIN = fileURLToPath(new URL('../../dist-examples/server/main.js', import.meta.url));

/** Output kept per stream: enough for every line of a test run, bounded all the same. */
const MAX_STREAM_CHARS = 5_000_000;

/** How a process ended. */
export interface ProcessExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

/**
 * The example server (`node dist-examples/server/main.js`) as a separate process, like ServerProcess, but with
 * stdout and stderr captured whole and apart: for assertions on every log line (JSON format,
 * no secrets), and on how the process ends after a signal.
 */
export class CapturedServer {
  readonly httpUrl: string;
  readonly wsUrl: string;
  stdout = '';
  stderr = '';
  /** Resolves when the process has exited. */
  readonly exited: Promise<ProcessExit>;

  private constructor(
    private readonly child: ChildProcess,
    readonly port: number,
  ) {
    this.httpUrl = `http://127.0.0.1:${port}`;
    this.wsUrl = `ws://127.0.0.1:${port}/wse`;
    child.stdout?.setEncoding('utf8');
    child.stderr?.setEncoding('utf8');
    child.stdout?.on('data', (chunk: string) => {
      if (this.stdout.length < MAX_STREAM_CHARS) this.stdout += chunk;
    });
    child.stderr?.on('data', (chunk: string) => {
      if (this.stderr.length < MAX_STREAM_CHARS) this.stderr += chunk;
    });
    // 'close' rather than 'exit': both streams are fully read by then.
    this.exited = new Promise((resolve) => child.once('close', (code, signal) => resolve({ code, signal })));
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /**
   * Spawns the built server with only `env` (plus PATH, PORT, HOST) and waits for `GET /health`
   * to answer 200, at most `timeoutMs`.
   */
  static async spawn(env: Record<string, string>, timeoutMs = 15_000): Promise<CapturedServer> {
    if (!existsSync(MAIN)) throw new Error(`${MAIN} is missing: run npm run build first`);
    const port = await freePort();
    const child = spawn(process.execPath, [MAIN], {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? '', ...env, PORT: String(port), HOST: '127.0.0.1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const server = new CapturedServer(child, port);
    try {
      await waitUntil(
        async () => {
          if (!server.running) throw new Error('the server process exited during start-up');
          try {
            const response = await fetch(`${server.httpUrl}/health`, { signal: AbortSignal.timeout(1_000) });
            await response.arrayBuffer();
            return response.status === 200;
          } catch {
            return false;
          }
        },
        timeoutMs,
        `GET /health to answer 200 on port ${port}`,
      );
    } catch (error) {
      await server.kill();
      throw new Error(
        `${(error as Error).message}\n--- stdout ---\n${server.stdout}\n--- stderr ---\n${server.stderr}`,
        { cause: error },
      );
    }
    return server;
  }

  /** Sends a signal (SIGTERM for a graceful stop). */
  signal(signal: NodeJS.Signals): void {
    this.child.kill(signal);
  }

  /** SIGKILL if still running, then waits for the exit: the cleanup of last resort. */
  async kill(): Promise<ProcessExit> {
    if (this.running) this.child.kill('SIGKILL');
    return this.exited;
  }
}
