/**
 * Medians of timings, in the two variants the experiments report (kept apart so every recorded number
 * stays what it was).
 * @module
 */

/** The median: the middle value, or the mean of the two middle values of an even count; NaN when empty. */
export function median(xs: readonly number[]): number {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/**
 * The upper median: the value at index ⌊n/2⌋ of the sorted list (the upper of the two middle values
 * of an even count), or 0 when empty. The run cache's `stepSecondsMedian` has always been this one.
 */
export function upperMedian(xs: readonly number[]): number {
  if (!xs.length) return 0;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}
