import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

let gc: (() => void) | undefined | null = null;

/**
 * A full garbage collection when one can be had: `global.gc` when node runs with --expose-gc,
 * otherwise V8's flag set at run time and `gc` taken from a fresh context (the flag applies to
 * contexts created after it). Returns false when neither works; callers then compare with
 * generous bounds after a settle period.
 */
export function forceGc(): boolean {
  if (gc === null) gc = findGc();
  if (gc === undefined) return false;
  gc();
  gc();
  return true;
}

function findGc(): (() => void) | undefined {
  const exposed = (globalThis as { gc?: () => void }).gc;
  if (typeof exposed === 'function') return exposed;
  try {
    setFlagsFromString('--expose-gc');
    const fromContext = runInNewContext('gc') as unknown;
    return typeof fromContext === 'function' ? (fromContext as () => void) : undefined;
  } catch {
    return undefined;
  }
}

/** Waits `ms` so freed memory can be returned, then collects when possible. */
export async function settle(ms = 500): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, ms));
  forceGc();
}
