/**
 * A seeded pseudo-random generator (mulberry32) for fuzz tests: the same seed gives the same
 * inputs, so a failure reproduces with `WSE_FUZZ_SEED=<seed>`. Not for anything but tests.
 */
export class Prng {
  private state: number;

  constructor(readonly seed: number) {
    this.state = seed >>> 0;
  }

  /** The seed from `WSE_FUZZ_SEED`, or a fresh one printed in test names. */
  static fromEnvironment(): Prng {
    const fromEnv = process.env.WSE_FUZZ_SEED;
    const seed = fromEnv !== undefined && /^\d+$/.test(fromEnv) ? Number(fromEnv) : Date.now() % 2 ** 32;
    return new Prng(seed);
  }

  /** A number in [0, 1). */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** An integer in [min, max]. */
  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1));
  }

  bool(probability = 0.5): boolean {
    return this.next() < probability;
  }

  pick<T>(items: readonly T[]): T {
    return items[this.int(0, items.length - 1)];
  }

  bytes(length: number): Buffer {
    const buffer = Buffer.alloc(length);
    for (let i = 0; i < length; i++) buffer[i] = this.int(0, 255);
    return buffer;
  }

  /** A string of `length` characters drawn from `alphabet`. */
  string(length: number, alphabet: string): string {
    let text = '';
    for (let i = 0; i < length; i++) text += alphabet[this.int(0, alphabet.length - 1)];
    return text;
  }
}
