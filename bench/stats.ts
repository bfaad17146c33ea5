/** Latency percentiles of one load step, in milliseconds. */
export interface LatencySummary {
  count: number;
  meanMs: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
}

/**
 * Exact nearest-rank percentiles over every sample. The bench keeps all samples (a few hundred
 * thousand at most) rather than a histogram, so sub-millisecond latencies keep their precision.
 */
export function summarizeLatencies(samplesMs: ArrayLike<number>): LatencySummary {
  const sorted = Float64Array.from(samplesMs).sort();
  const count = sorted.length;
  if (count === 0) return { count: 0, meanMs: 0, p50Ms: 0, p99Ms: 0, maxMs: 0 };
  let sum = 0;
  for (const value of sorted) sum += value;
  const percentile = (p: number): number => sorted[Math.min(count - 1, Math.max(0, Math.ceil((p / 100) * count) - 1))]!;
  return {
    count,
    meanMs: round(sum / count),
    p50Ms: round(percentile(50)),
    p99Ms: round(percentile(99)),
    maxMs: round(sorted[count - 1]!),
  };
}

/** Rounds to 3 decimals: microsecond precision for milliseconds, enough for a report. */
export function round(value: number, decimals = 3): number {
  const factor = 10 ** decimals;
  return Math.round(value * factor) / factor;
}
