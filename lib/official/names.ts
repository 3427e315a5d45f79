/**
 * The authors' tensor names for every tensor of one of our models: a structural walk, scale by scale and
 * layer by layer, in the order the authors' builder creates its modules. Our stage `i` of scale `s` is
 * entry `j` of the authors' `transforms.<s>.chain` (their chain holds the same layers in the same order:
 * the logit transform, ActNorms, residual blocks, the squeeze; the squeeze-first layer lives outside
 * their model and factor-out is not a chain entry), and inside a layer our names equal theirs
 * (`nnet.0.weight`, `nnet.nnet.1.u`), except ActNorm1d, which they wrap as `fc_module`.
 *
 * Each authors' name has a role:
 * - `parameter` / `buffer`: copied into our tensor of that name (weights, biases, LipSwish β, ActNorm
 *   log-scales and biases, the power-iteration vectors u, v, flat at the input resolution in both codes);
 * - `actnormFlag`: ActNorm's `initialized` (1: the data-dependent initialisation is done; we mark ours);
 * - `convFlag`: a convolution's `initialized` (0: u, v were never drawn, so ours are kept);
 * - `spatialDims`: a convolution's recorded input resolution, checked against ours;
 * - `estimator`: a block's `lamb` (Poisson λ) or `geom_p` (logit of the geometric p): they set the
 *   roulette's distribution (checked equal across blocks, used in the configuration);
 * - `bookkeeping`: recomputed or diagnostic values that carry no model information, see
 *   {@link BOOKKEEPING_BUFFERS}.
 * @module
 */
import { ActNorm1d } from "../flow/actnorm.ts";
import { IResBlock } from "../flow/iresblock.ts";
import type { ResidualFlow } from "../flow/model.ts";
import { SpectralNormConv2d } from "../flow/spectral_norm.ts";

/**
 * Buffers of the authors' layers that are not loaded, and why:
 * - `scale` (each spectrally normalised layer): σ = uᵀ W v as of their last weight computation; every
 *   forward pass recomputes it from u, v and W, so it is derived, not state;
 * - `last_n_samples`, `last_firmom`, `last_secmom` (each residual block): the roulette draw and the first
 *   and second moments of the last training batch's log-det estimate, logged for diagnostics only.
 */
export const BOOKKEEPING_BUFFERS: Readonly<Record<string, string>> = {
  scale: "σ of the last weight computation, recomputed from u, v and W at every forward",
  last_n_samples: "the roulette's last training draw of N (diagnostic)",
  last_firmom: "first moment of the last training batch's log-det estimate (diagnostic)",
  last_secmom: "second moment of the last training batch's log-det estimate (diagnostic)",
};

/** What an authors' tensor name stands for in our model. */
export type OfficialRole =
  | { readonly role: "parameter"; readonly ours: string }
  | { readonly role: "buffer"; readonly ours: string }
  | { readonly role: "actnormFlag"; readonly ours: string }
  | { readonly role: "convFlag"; readonly layer: SpectralNormConv2d }
  | { readonly role: "spatialDims"; readonly layer: SpectralNormConv2d }
  | { readonly role: "estimator"; readonly param: "lamb" | "geom_p" }
  | { readonly role: "bookkeeping"; readonly why: string };

/** True for roles whose tensor must be present in a checkpoint. */
export function isRequiredRole(r: OfficialRole): boolean {
  return r.role === "parameter" || r.role === "buffer";
}

/**
 * Every authors' tensor name (without the `module.` prefix) of `model`, with its role, in the authors'
 * `state_dict` order within each layer.
 */
export function officialNames(model: ResidualFlow): Map<string, OfficialRole> {
  const out = new Map<string, OfficialRole>();
  const chainIndex = new Map<number, number>();
  let skipSqueezeFirst = model.config.squeezeFirst;
  for (const st of model.stages) {
    if (st.kind !== "layer") continue;
    if (skipSqueezeFirst) {
      skipSqueezeFirst = false; // the authors apply it before their model
      continue;
    }
    const j = chainIndex.get(st.scale) ?? 0;
    chainIndex.set(st.scale, j + 1);
    const prefix = `transforms.${st.scale}.chain.${j}`;
    const layer = st.layer;
    const wrap = layer instanceof ActNorm1d ? "fc_module." : "";
    const local = (ours: string) => `${prefix}.${wrap}${ours.slice(ours.indexOf(".") + 1)}`;
    for (const p of layer.parameters()) out.set(local(p.name), { role: "parameter", ours: p.name });
    if (layer instanceof IResBlock) {
      out.set(`${prefix}.geom_p`, { role: "estimator", param: "geom_p" });
      out.set(`${prefix}.lamb`, { role: "estimator", param: "lamb" });
    }
    for (const b of layer.buffers()) {
      const leaf = b.name.slice(b.name.lastIndexOf(".") + 1);
      if (leaf === "initialized") out.set(local(b.name), { role: "actnormFlag", ours: b.name });
      else if (leaf in BOOKKEEPING_BUFFERS) {
        out.set(local(b.name), { role: "bookkeeping", why: BOOKKEEPING_BUFFERS[leaf] });
      } else out.set(local(b.name), { role: "buffer", ours: b.name });
    }
    if (layer instanceof IResBlock) {
      const n = layer.nnet as unknown as { lipschitzLayers?: () => unknown[] };
      for (const l of n.lipschitzLayers ? n.lipschitzLayers() : []) {
        const ln = (l as { weight: { name: string } }).weight.name;
        const lp = local(ln.slice(0, ln.lastIndexOf(".")));
        if (l instanceof SpectralNormConv2d) {
          out.set(`${lp}.initialized`, { role: "convFlag", layer: l });
          out.set(`${lp}.spatial_dims`, { role: "spatialDims", layer: l });
        }
        out.set(`${lp}.scale`, { role: "bookkeeping", why: BOOKKEEPING_BUFFERS.scale });
      }
    }
  }
  return out;
}
