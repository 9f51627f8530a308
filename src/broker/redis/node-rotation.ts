import { createConnection } from 'node:net';
import { AbstractConnector, type RedisOptions } from 'ioredis';

/** A node of a Redis Cluster. */
export interface ClusterAddress {
  readonly host: string;
  readonly port: number;
}

type NetStream = Awaited<ReturnType<AbstractConnector['connect']>>;

/**
 * An ioredis connector that connects to the nodes of a cluster in turn: the first attempt to
 * the first node, each further attempt to the next. The classic pub/sub bus of a cluster reaches
 * every node, so one connection to any live node carries the probes and the globs; when its
 * node dies, ioredis's own reconnection (with our backoff) lands on another.
 */
export function rotatingConnector(nodes: readonly ClusterAddress[]): NonNullable<RedisOptions['Connector']> {
  let next = 0;
  class RotatingConnector extends AbstractConnector {
    constructor(options: { disconnectTimeout?: number }) {
      super(options.disconnectTimeout ?? 2000);
    }

    connect(): Promise<NetStream> {
      const node = nodes[next++ % nodes.length];
      this.connecting = true;
      return new Promise<NetStream>((resolve, reject) => {
        process.nextTick(() => {
          if (!this.connecting) {
            reject(new Error('Connection is closed.'));
            return;
          }
          const stream = createConnection({ host: node.host, port: node.port });
          stream.once('error', (error: Error) => {
            this.firstError = error;
          });
          this.stream = stream;
          resolve(stream);
        });
      });
    }
  }
  return RotatingConnector as unknown as NonNullable<RedisOptions['Connector']>;
}
