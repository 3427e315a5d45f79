/**
 * Spectrally normalised Conv2d and Linear layers (the official `InducedNormConv2d` /
 * `InducedNormLinear`; p = q = 2 by default, any induced (p→q) norm through `domain`/`codomain`): the
 * entry point of the layer family, re-exporting the base layer (induced_norm_layer.ts), the update
 * scheduling (power_iteration.ts) and the two layers (spectral_norm_conv.ts, spectral_norm_linear.ts).
 *
 * - Parameters "weight" (raw, PyTorch default init) and "bias"; buffers "u" and "v", the persistent
 *   power-iteration vectors of the true operator at the input resolution (flat, as the official
 *   buffers: v of length C_in·H·W, u of length C_out·H_out·W_out; for 1×1 kernels v of length C_in,
 *   u of length C_out, iterating on the C_out×C_in matrix).
 * - Forward never iterates: it uses W / max(1, σ/coeff) with σ = ⟨u, A_W v⟩ differentiable in W (u, v
 *   constants). The bias is not normalised.
 * - {@link updateLipschitzAll} / `updateLipschitz()` run the power iteration under noGrad after each
 *   optimizer step and before evaluation: u ← normalize(A v), then v ← normalize(Aᵀ u); adaptive stop
 *   when ‖u − u_old‖/√len(u) < atol + rtol·max(u) and the same for v (atol = rtol = 1e-3, at most 200
 *   iterations), or exactly `nIterations`. Convergence flags are computed on the device for every
 *   iteration and read back once per `checkEvery` iterations (for all layers together), and the state
 *   of the first converged iteration is kept, so the result is the official one with few readbacks.
 * - First use (the first forward, or `initialize(hw)`): the input resolution is recorded, u and v are
 *   drawn from N(0, I) and normalised, and `initIterations` fixed iterations run synchronously (the
 *   forward pass cannot read back). The official code iterates to tolerance there: every entry point
 *   calls {@link convergeLipschitzAll} (through `ResidualFlow.convergeLipschitz`, which the trainer
 *   runs before a fresh run's first step) to do the same. `reinitialize()` redraws u, v for a replaced
 *   weight.
 * @module
 */
export * from "./induced_norm_layer.ts";
export * from "./power_iteration.ts";
export * from "./spectral_norm_conv.ts";
export * from "./spectral_norm_linear.ts";
export type { BatchSpec } from "./power_batch.ts";
