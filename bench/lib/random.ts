/**
 * Deterministic randomness for the load generators: a seeded PRNG (so a run
 * can be repeated with the same request sequence) and a Zipf sampler, because
 * real mail traffic is skewed — a few addresses, senders and client networks
 * account for most requests — and a uniform draw over 100,000 keys would
 * defeat every cache while a single repeated key would flatter them all.
 */

/** mulberry32: small, fast and good enough to shuffle test data; not for secrets. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Draws ranks 0 … n-1 with probability proportional to 1 / (rank + 1)^exponent.
 * The cumulative table costs 8 bytes per rank; a draw is a binary search.
 */
export class ZipfSampler {
  private readonly cumulative: Float64Array;

  constructor(
    readonly size: number,
    readonly exponent: number,
    private readonly random: () => number,
  ) {
    if (!Number.isSafeInteger(size) || size <= 0)
      throw new RangeError("Zipf size must be a positive integer");
    if (!(exponent >= 0)) throw new RangeError("Zipf exponent must be zero or more");
    this.cumulative = new Float64Array(size);
    let total = 0;
    for (let rank = 0; rank < size; rank++) {
      total += 1 / (rank + 1) ** exponent;
      this.cumulative[rank] = total;
    }
    for (let rank = 0; rank < size; rank++) this.cumulative[rank] = this.cumulative[rank]! / total;
  }

  /** Probability of one rank (for tests and the report). */
  probability(rank: number): number {
    if (rank < 0 || rank >= this.size) return 0;
    return this.cumulative[rank]! - (rank === 0 ? 0 : this.cumulative[rank - 1]!);
  }

  next(): number {
    const target = this.random();
    let low = 0;
    let high = this.size - 1;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (this.cumulative[middle]! <= target) low = middle + 1;
      else high = middle;
    }
    return low;
  }
}

/** A weighted choice among a few categories (weights need not sum to 1). */
export function weightedPicker<T>(
  choices: ReadonlyArray<{ weight: number; value: T }>,
  random: () => number,
) {
  const total = choices.reduce((sum, choice) => sum + choice.weight, 0);
  if (choices.length === 0 || !(total > 0))
    throw new RangeError("weightedPicker needs a positive total weight");
  return (): T => {
    let target = random() * total;
    for (const choice of choices) {
      target -= choice.weight;
      if (target < 0) return choice.value;
    }
    return choices[choices.length - 1]!.value;
  };
}

/** Fisher–Yates, in place, with the given PRNG. */
export function shuffle<T>(items: T[], random: () => number): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    const held = items[i]!;
    items[i] = items[j]!;
    items[j] = held;
  }
  return items;
}
