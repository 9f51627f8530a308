import type { Cluster, Redis } from 'ioredis';

/**
 * Closes a connection (or a cluster's) politely when it is up, with a hard disconnect otherwise
 * or when QUIT fails: nothing is left open, and nothing throws.
 */
export async function quitQuietly(connection: Redis | Cluster): Promise<void> {
  if (connection.status === 'ready') {
    try {
      await connection.quit();
      return;
    } catch {
      // fall through to a hard disconnect
    }
  }
  connection.disconnect(false);
}
