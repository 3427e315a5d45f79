/**
 * A global counter of the floating-point work recorded by matrix products and convolutions (2·M·N·K
 * per product, 2·outputs·C·KH·KW per convolution or adjoint), for benchmarks that report GFLOP/s.
 * Element-wise ops are not counted, as in the usual convention.
 * @module
 */
let flops = 0;

/** Adds `n` floating-point operations. */
export function addFlops(n: number): void {
  flops += n;
}

/** Operations recorded since the last reset. */
export function flopCount(): number {
  return flops;
}

/** Sets the counter to zero. */
export function resetFlops(): void {
  flops = 0;
}
