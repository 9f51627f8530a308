import { connect, createServer, type Server, type Socket } from 'node:net';

/** One client connection through the proxy. */
export interface ProxiedConnection {
  readonly id: number;
  /** Everything the client sent so far, as latin1 text (bounded to the first 4 KiB): tells a subscriber from a publisher. */
  readonly sentText: () => string;
  /** True while the server's bytes for this client are held back. */
  readonly stalled: boolean;
}

/**
 * A TCP proxy on 127.0.0.1 in front of one upstream port. A test can stall one connection's
 * server-to-client direction: the client's socket stays open and its writes still reach the
 * server, but nothing comes back, as with a half-open TCP connection or a NAT entry that went
 * away. From both ends the connection looks alive; only an end-to-end check can tell.
 */
export class TcpProxy {
  private readonly connections = new Map<number, Connection>();
  private nextId = 1;

  private constructor(
    private readonly server: Server,
    readonly port: number,
    private readonly upstreamPort: number,
  ) {}

  /** `redis://127.0.0.1:<proxy port>` */
  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  static async start(upstreamPort: number): Promise<TcpProxy> {
    const server = createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    const proxy = new TcpProxy(server, (server.address() as { port: number }).port, upstreamPort);
    server.on('connection', (client) => proxy.accept(client));
    return proxy;
  }

  /** Open connections, oldest first. */
  list(): ProxiedConnection[] {
    return [...this.connections.values()].map((c) => c.view());
  }

  /** Stalls the server-to-client direction of every open connection `match` selects; returns how many. */
  stall(match: (connection: ProxiedConnection) => boolean): number {
    let count = 0;
    for (const connection of this.connections.values()) {
      if (match(connection.view())) {
        connection.stalled = true;
        count++;
      }
    }
    return count;
  }

  async close(): Promise<void> {
    for (const connection of this.connections.values()) connection.destroy();
    this.connections.clear();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(client: Socket): void {
    const id = this.nextId++;
    const upstream = connect(this.upstreamPort, '127.0.0.1');
    const connection = new Connection(id, client, upstream);
    this.connections.set(id, connection);
    const forget = (): void => {
      connection.destroy();
      this.connections.delete(id);
    };
    client.on('close', forget);
    upstream.on('close', forget);
  }
}

class Connection {
  stalled = false;
  private sent = '';

  constructor(
    readonly id: number,
    private readonly client: Socket,
    private readonly upstream: Socket,
  ) {
    client.on('error', () => undefined);
    upstream.on('error', () => undefined);
    client.on('data', (chunk: Buffer) => {
      if (this.sent.length < 4096) this.sent += chunk.toString('latin1').slice(0, 4096 - this.sent.length);
      upstream.write(chunk);
    });
    // While stalled, the server's bytes are read (so the server's writes succeed) and dropped.
    upstream.on('data', (chunk: Buffer) => {
      if (!this.stalled) client.write(chunk);
    });
  }

  view(): ProxiedConnection {
    return { id: this.id, sentText: () => this.sent, stalled: this.stalled };
  }

  destroy(): void {
    this.client.destroy();
    this.upstream.destroy();
  }
}
