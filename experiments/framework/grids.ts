/**
 * Image layouts shared by the experiments' figures.
 * @module
 */

/**
 * Interleaves rows of originals and reconstructions for a grid of 8 columns: up to 8 originals, their
 * reconstructions, the next 8 originals, ... `inputs` and `outputs` hold `n` images of `per` values each.
 */
export function pairsGrid(inputs: Float32Array, outputs: Float32Array, n: number, per: number): Float32Array {
  const out = new Float32Array(2 * n * per);
  let k = 0;
  for (let row = 0; row < n; row += 8) {
    const m = Math.min(8, n - row);
    for (const src of [inputs, outputs]) {
      out.set(src.subarray(row * per, (row + m) * per), k * per);
      k += m;
    }
  }
  return out;
}
