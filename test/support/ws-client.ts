import WebSocket, { type ClientOptions } from 'ws';

/** A received frame: its text, and its JSON when it parses. */
export interface ReceivedFrame {
  readonly text: string;
  readonly json: unknown;
}

/** A system envelope `{c, t, p, v}` as the tests read it. */
export interface Envelope {
  c?: string;
  t: string;
  p: Record<string, unknown>;
  v?: number;
}

const DEFAULT_TIMEOUT_MS = 2_000;

/**
 * A real `ws` client with a frame queue, so tests assert exactly: "the next frame is X within
 * t ms", "nothing arrives within t ms", "closed with code C". Every wait has a timeout.
 */
export class TestClient {
  readonly frames: ReceivedFrame[] = [];
  private waiter: (() => void) | undefined;
  private readonly closedPromise: Promise<{ code: number; reason: string }>;
  private readonly openPromise: Promise<void>;

  private constructor(readonly socket: WebSocket) {
    socket.on('message', (data) => {
      const text = data.toString();
      let json: unknown;
      try {
        json = JSON.parse(text);
      } catch {
        json = undefined;
      }
      this.frames.push({ text, json });
      this.waiter?.();
    });
    this.closedPromise = new Promise((resolve) =>
      socket.on('close', (code, reason) => {
        resolve({ code, reason: reason.toString() });
        this.waiter?.();
      }),
    );
    this.openPromise = new Promise((resolve, reject) => {
      socket.once('open', () => resolve());
      socket.once('error', reject);
      socket.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode} on upgrade`)));
    });
    socket.on('error', () => undefined);
  }

  /** Connects and waits for the socket to open (not for `server_ready`). */
  static async connect(url: string, options: ClientOptions = {}): Promise<TestClient> {
    const client = new TestClient(new WebSocket(url, options));
    await client.openPromise;
    return client;
  }

  /** Connects and consumes the `server_ready` frame, returning it too. */
  static async ready(url: string, options: ClientOptions = {}): Promise<{ client: TestClient; ready: Envelope }> {
    const client = await TestClient.connect(url, options);
    const ready = await client.nextEnvelope();
    if (ready.t !== 'server_ready') throw new Error(`expected server_ready, got ${JSON.stringify(ready)}`);
    return { client, ready };
  }

  get isOpen(): boolean {
    return this.socket.readyState === WebSocket.OPEN;
  }

  send(value: unknown): void {
    this.socket.send(typeof value === 'string' || Buffer.isBuffer(value) ? value : JSON.stringify(value));
  }

  /** The next frame, waiting at most `timeoutMs`. */
  async next(timeoutMs = DEFAULT_TIMEOUT_MS): Promise<ReceivedFrame> {
    await this.waitFor(() => this.frames.length > 0, timeoutMs, 'a frame');
    return this.frames.shift()!;
  }

  /** The next frame parsed as JSON. */
  async nextJson(timeoutMs = DEFAULT_TIMEOUT_MS): Promise<unknown> {
    return (await this.next(timeoutMs)).json;
  }

  async nextEnvelope(timeoutMs = DEFAULT_TIMEOUT_MS): Promise<Envelope> {
    return (await this.next(timeoutMs)).json as Envelope;
  }

  /** Skips frames until one of type `t` arrives (e.g. past heartbeat pings). */
  async nextOfType(t: string, timeoutMs = DEFAULT_TIMEOUT_MS): Promise<Envelope> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const envelope = await this.nextEnvelope(Math.max(1, deadline - Date.now()));
      if (envelope?.t === t) return envelope;
    }
  }

  /** Exactly `count` frames within `timeoutMs`. */
  async take(count: number, timeoutMs = DEFAULT_TIMEOUT_MS): Promise<ReceivedFrame[]> {
    await this.waitFor(() => this.frames.length >= count, timeoutMs, `${count} frames`);
    return this.frames.splice(0, count);
  }

  /** Asserts that no frame arrives within `ms`. */
  async expectNothing(ms = 200): Promise<void> {
    await new Promise((resolve) => setTimeout(resolve, ms));
    if (this.frames.length > 0) throw new Error(`expected no frame, got ${this.frames[0].text}`);
  }

  /** Sends `{"t":"subscription",...}` and returns the `subscription_update` answer. */
  async subscribe(topics: unknown, action: 'subscribe' | 'unsubscribe' = 'subscribe'): Promise<Envelope> {
    this.send({ t: 'subscription', p: { action, topics } });
    return this.nextOfType('subscription_update');
  }

  /** Resolves with the close code and reason, or rejects after `timeoutMs`. */
  async closed(timeoutMs = DEFAULT_TIMEOUT_MS): Promise<{ code: number; reason: string }> {
    return withTimeout(this.closedPromise, timeoutMs, 'the socket to close');
  }

  /** Closes from the client side and waits for the close to complete. */
  async close(): Promise<void> {
    if (this.socket.readyState === WebSocket.CLOSED) return;
    this.socket.close();
    await this.closed().catch(() => this.socket.terminate());
  }

  private async waitFor(condition: () => boolean, timeoutMs: number, what: string): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!condition()) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiter = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.waiter = undefined;
    }
  }
}

export function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/** Polls `condition` every 10 ms until true, failing after `timeoutMs`. */
export async function eventually(
  condition: () => boolean,
  timeoutMs = DEFAULT_TIMEOUT_MS,
  what = 'a condition',
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
