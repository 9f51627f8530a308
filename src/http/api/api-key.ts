import { createHash, timingSafeEqual } from 'node:crypto';

/**
 * A bearer key check. Keys are compared as SHA-256 digests with `timingSafeEqual`: equal length
 * by construction, so neither the key's content nor its length leaks through response timing.
 * The server API uses it; an application can protect its own routes (metrics) with it too.
 */
export class WseApiKey {
  private readonly digest: Buffer;

  constructor(key: string) {
    this.digest = sha256(key);
  }

  /** True when `authorization` is `Bearer <the key>`. */
  matches(authorization: string | undefined): boolean {
    const presented = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(authorization ?? '')?.[1];
    return presented !== undefined && timingSafeEqual(sha256(presented), this.digest);
  }
}

function sha256(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}
