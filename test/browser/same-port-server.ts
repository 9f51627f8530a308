import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { waitUntil } from '../support/server-process.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const MAIN = fileURLToPath(new URL('../../dist/main.js', import.meta.url));

/**
 * The example server (`node dist/main.js`) started again on a port it had before, to restart
 * an instance under an open page: a page reconnects to the address it was loaded from, and
 * `ServerProcess.spawn` always picks a fresh port. Same clean environment as `ServerProcess`.
 */
export class SamePortServer {
  private output = '';
  private readonly exited: Promise<void>;

  private constructor(
    private readonly child: ChildProcess,
    readonly port: number,
  ) {
    const keep = (chunk: Buffer): void => {
      this.output = (this.output + chunk.toString()).slice(-20_000);
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    this.exited = new Promise((resolve) => child.once('exit', () => resolve()));
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Spawns the server on `port` and waits (at most `timeoutMs`) for `GET /health` to answer 200. */
  static async start(port: number, env: Record<string, string>, timeoutMs = 15_000): Promise<SamePortServer> {
    const childEnv = { PATH: process.env.PATH ?? '', ...env, PORT: String(port), HOST: '127.0.0.1' };
    const child = spawn(process.execPath, [MAIN], { cwd: ROOT, env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] });
    const server = new SamePortServer(child, port);
    try {
      await waitUntil(
        async () => {
          if (!server.running) throw new Error(`server process exited with ${child.exitCode ?? child.signalCode}`);
          try {
            const response = await fetch(`http://127.0.0.1:${port}/health`, { signal: AbortSignal.timeout(1_000) });
            await response.arrayBuffer();
            return response.status === 200;
          } catch {
            return false;
          }
        },
        timeoutMs,
        `the restarted server on port ${port} to answer GET /health with 200`,
      );
    } catch (error) {
      await server.stop();
      throw new Error(`${(error as Error).message}\n--- server output ---\n${server.output}`, { cause: error });
    }
    return server;
  }

  /** SIGTERM, then SIGKILL after `graceMs`; resolves once the process has exited. */
  async stop(graceMs = 5_000): Promise<void> {
    if (!this.running) return;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
    await this.exited;
    clearTimeout(timer);
  }
}
