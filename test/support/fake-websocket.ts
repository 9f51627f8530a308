import type { WseSocket, WseWebSocketConstructor } from '../../src/client/index.js';

type Json = Record<string, unknown>;

/**
 * A scripted WebSocket for the client's unit specs: the spec plays the server (accept, deliver
 * frames, close with a code) and reads what the client sent. Nothing touches a network.
 */
export class FakeSocket implements WseSocket {
  readyState = 0;
  binaryType = 'blob';
  onmessage: ((event: { data: unknown }) => void) | null = null;
  onclose: ((event: { code: number; reason: string }) => void) | null = null;
  onerror: (() => void) | null = null;
  /** Every text the client sent, in order. */
  readonly sent: string[] = [];
  /** What the client's own close() asked for. */
  closedByClient: { code?: number; reason?: string } | undefined;
  terminated = false;

  constructor(readonly url: string) {}

  /** The token query parameter of the URL the client opened (null when absent). */
  get token(): string | null {
    return new URL(this.url).searchParams.get('token');
  }

  send(data: string): void {
    if (this.readyState !== 1) throw new Error(`send on a socket in state ${this.readyState}`);
    this.sent.push(data);
  }

  close(code?: number, reason?: string): void {
    this.closedByClient = { code, reason };
    this.readyState = 2;
  }

  terminate(): void {
    this.terminated = true;
    this.readyState = 3;
  }

  /** The sent frames, parsed. */
  frames(): Json[] {
    return this.sent.map((text) => JSON.parse(text) as Json);
  }

  /** Sent frames of type `t`. */
  framesOf(t: string): Json[] {
    return this.frames().filter((frame) => frame.t === t);
  }

  /** Opens and sends `server_ready` with `details` over the defaults. */
  accept(details: Json = {}): void {
    this.readyState = 1;
    this.system('server_ready', {
      message: 'Connection established',
      details: {
        version: 1,
        features: { subscriptions: true, patterns: true, server_ping: true, redis: false },
        connection_id: 'fake-connection',
        user_id: null,
        ...details,
      },
    });
  }

  /** A system envelope `{"c":"WSE","t":type,"p":p,"v":1}`. */
  system(type: string, p: Json): void {
    this.deliver({ c: 'WSE', t: type, p, v: 1 });
  }

  /** Answers a subscription frame as the server does. */
  answer(action: 'subscribe' | 'unsubscribe', succeeded: string[], failed: string[] = [], extra: Json = {}): void {
    this.system('subscription_update', {
      action,
      success_topics: succeeded,
      failed_topics: failed,
      errors: failed.map((topic) => ({ topic, reason: 'not authorized' })),
      ...extra,
    });
  }

  /** A frame from the server: a string as is, anything else as its JSON. */
  deliver(frame: unknown): void {
    this.onmessage?.({ data: typeof frame === 'string' ? frame : JSON.stringify(frame) });
  }

  /** The server (or the network) closes the connection. */
  serverClose(code: number, reason = ''): void {
    this.readyState = 3;
    this.onclose?.({ code, reason });
  }
}

/** A WebSocket class whose instances are kept, newest last. */
export function fakeWebSocket(): { WebSocket: WseWebSocketConstructor; sockets: FakeSocket[]; last(): FakeSocket } {
  const sockets: FakeSocket[] = [];
  class WebSocket extends FakeSocket {
    constructor(url: string) {
      super(url);
      sockets.push(this);
    }
  }
  return {
    WebSocket,
    sockets,
    last: () => {
      const socket = sockets.at(-1);
      if (socket === undefined) throw new Error('no socket was opened');
      return socket;
    },
  };
}
