import { fork, type ChildProcess } from 'node:child_process';
import { registerBenchPid, unregisterBenchPid } from './cpu.js';

/**
 * A small typed RPC over the fork() IPC channel. The orchestrator calls methods of a child
 * process's API object and awaits their results; every call has a timeout, so a stuck child
 * fails the run instead of hanging it.
 */

interface CallMessage {
  readonly kind: 'call';
  readonly id: number;
  readonly method: string;
  readonly params: unknown;
}

interface ReplyMessage {
  readonly kind: 'reply';
  readonly id: number;
  readonly result?: unknown;
  readonly error?: string;
}

interface ReadyMessage {
  readonly kind: 'ready';
}

type ParamOf<F> = F extends (params: infer P) => unknown ? P : never;
type ResultOf<F> = F extends (...args: never[]) => infer R ? Awaited<R> : never;

const DEFAULT_CALL_TIMEOUT_MS = 120_000;

export interface SpawnOptions {
  /** Node flags of the child (`--expose-gc`, `--cpu-prof`, ...). */
  readonly execArgv?: readonly string[];
  readonly cwd?: string;
}

/** The orchestrator's handle on one child process. */
export class Child<Api extends object> {
  private nextId = 1;
  private exited = false;
  private readonly pending = new Map<
    number,
    { resolve: (value: unknown) => void; reject: (error: Error) => void; timer: NodeJS.Timeout }
  >();
  private readonly exitPromise: Promise<void>;

  private constructor(
    readonly name: string,
    private readonly proc: ChildProcess,
  ) {
    if (proc.pid !== undefined) registerBenchPid(proc.pid);
    this.exitPromise = new Promise((resolve) => {
      proc.once('exit', (code, signal) => {
        this.exited = true;
        if (proc.pid !== undefined) unregisterBenchPid(proc.pid);
        for (const [id, call] of this.pending) {
          clearTimeout(call.timer);
          call.reject(new Error(`${name} exited (code ${code}, signal ${signal}) during call ${id}`));
        }
        this.pending.clear();
        resolve();
      });
    });
    proc.on('message', (message: ReplyMessage | ReadyMessage) => {
      if (message.kind !== 'reply') return;
      const call = this.pending.get(message.id);
      if (call === undefined) return;
      this.pending.delete(message.id);
      clearTimeout(call.timer);
      if (message.error !== undefined) call.reject(new Error(`${name}: ${message.error}`));
      else call.resolve(message.result);
    });
  }

  get pid(): number {
    return this.proc.pid ?? -1;
  }

  /** Forks `script` and resolves once the child's RPC server is listening (at most 30 s). */
  static async spawn<Api extends object>(
    name: string,
    script: string,
    options: SpawnOptions = {},
  ): Promise<Child<Api>> {
    const proc = fork(script, [], {
      execArgv: [...(options.execArgv ?? [])],
      cwd: options.cwd,
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      serialization: 'advanced',
    });
    const child = new Child<Api>(name, proc);
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${name} did not start within 30 s`)), 30_000);
      proc.on('message', function onReady(message: ReplyMessage | ReadyMessage) {
        if (message.kind !== 'ready') return;
        clearTimeout(timer);
        proc.off('message', onReady);
        resolve();
      });
      proc.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`${name} exited with ${code} before it was ready`));
      });
    });
    return child;
  }

  call<M extends keyof Api & string>(
    method: M,
    params: ParamOf<Api[M]>,
    timeoutMs = DEFAULT_CALL_TIMEOUT_MS,
  ): Promise<ResultOf<Api[M]>> {
    if (this.exited) return Promise.reject(new Error(`${this.name} has exited`));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`${this.name}.${method} did not answer within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, { resolve: resolve as (value: unknown) => void, reject, timer });
      const message: CallMessage = { kind: 'call', id, method, params };
      this.proc.send(message);
    });
  }

  /** Asks the child to exit by itself (so `--cpu-prof` writes its profile), then kills it if needed. */
  async shutdown(graceMs = 5_000): Promise<void> {
    if (this.exited) return;
    this.proc.send({ kind: 'call', id: 0, method: '__exit', params: null } satisfies CallMessage);
    const timer = setTimeout(() => this.proc.kill('SIGKILL'), graceMs);
    await this.exitPromise;
    clearTimeout(timer);
  }

  /** Ends the child at once (SIGKILL) and waits for its exit. */
  async kill(): Promise<void> {
    if (this.exited) return;
    this.proc.kill('SIGKILL');
    await this.exitPromise;
  }
}

/**
 * Serves `api` to the parent process. The child exits when the parent goes away, so no process
 * outlives the run.
 */
export function serve(api: object): void {
  const methods = api as Record<string, (params: unknown) => unknown>;
  process.on('message', (message: CallMessage) => {
    if (message.kind !== 'call') return;
    if (message.method === '__exit') {
      process.exit(0);
    }
    const reply = (body: { result?: unknown; error?: string }): void => {
      if (process.connected) process.send?.({ kind: 'reply', id: message.id, ...body } satisfies ReplyMessage);
    };
    const method = methods[message.method];
    if (typeof method !== 'function') {
      reply({ error: `no method ${message.method}` });
      return;
    }
    Promise.resolve()
      .then(() => method.call(api, message.params))
      .then(
        (result) => reply({ result }),
        (error: unknown) => reply({ error: error instanceof Error ? (error.stack ?? error.message) : String(error) }),
      );
  });
  process.on('disconnect', () => process.exit(0));
  process.send?.({ kind: 'ready' } satisfies ReadyMessage);
}
