/** The classifier head against a host reference (conv, ActNorm init, ReLU, pooling, linear), gradients, names. */
import { assertClose, assertEquals, assertThrows, assertTrue, type Tolerance } from "../testing/asserts.ts";
import { createDevice } from "../engine/devices.ts";
import { tensor } from "../engine/ops/creation.ts";
import { crossEntropy } from "../engine/ops/nn.ts";
import { Rng } from "../engine/random.ts";
import { noGrad, type Tensor, tidy } from "../engine/tensor.ts";
import { ClassifierHead } from "./classifier.ts";
import { normals, parameterGradients } from "./layer_test_util.ts";

/** Float64 vs the host reference. */
const F64: Tolerance = { atol: 1e-12, rtol: 1e-10 };
/** Float32 vs the float64 reference. */
const F32: Tolerance = { atol: 1e-4, rtol: 1e-4 };

/** Host conv 3×3, padding 1, with bias. */
function conv3(
  x: Float64Array,
  [b, c, h, w]: number[],
  wt: Float64Array,
  bias: Float64Array,
  o: number,
): Float64Array {
  const y = new Float64Array(b * o * h * w);
  for (let n = 0; n < b; n++) {
    for (let oc = 0; oc < o; oc++) {
      for (let i = 0; i < h; i++) {
        for (let j = 0; j < w; j++) {
          let s = bias[oc];
          for (let ic = 0; ic < c; ic++) {
            for (let di = 0; di < 3; di++) {
              for (let dj = 0; dj < 3; dj++) {
                const ii = i + di - 1;
                const jj = j + dj - 1;
                if (ii < 0 || ii >= h || jj < 0 || jj >= w) continue;
                s += x[((n * c + ic) * h + ii) * w + jj] * wt[((oc * c + ic) * 3 + di) * 3 + dj];
              }
            }
          }
          y[((n * o + oc) * h + i) * w + j] = s;
        }
      }
    }
  }
  return y;
}

/** Host branch: conv → ActNorm (initialised on this batch) → ReLU → mean over H, W. */
function branchRef(
  x: Float64Array,
  shape: number[],
  wt: Float64Array,
  bias: Float64Array,
  o: number,
): number[][] {
  const [b, , h, w] = shape;
  const y = conv3(x, shape, wt, bias, o);
  const out = Array.from({ length: b }, () => new Array(o).fill(0));
  for (let oc = 0; oc < o; oc++) {
    const vals: number[] = [];
    for (let n = 0; n < b; n++) for (let k = 0; k < h * w; k++) vals.push(y[(n * o + oc) * h * w + k]);
    const m = vals.reduce((s, v) => s + v, 0) / vals.length;
    const v = vals.reduce((s, q) => s + (q - m) ** 2, 0) / (vals.length - 1);
    const scale = Math.exp(-0.5 * Math.log(Math.max(v, 0.2)));
    for (let n = 0; n < b; n++) {
      let acc = 0;
      for (let k = 0; k < h * w; k++) acc += Math.max(0, (y[(n * o + oc) * h * w + k] - m) * scale);
      out[n][oc] = acc / (h * w);
    }
  }
  return out;
}

Deno.test("classifier head equals a host reference; every parameter gets a finite gradient", async () => {
  const shapes = [[3, 2, 4, 4], [3, 8, 2, 2]];
  const xs = shapes.map((s, i) => normals(s.reduce((a, b) => a * b, 1), new Rng(10 + i)));
  for (const [kind, tol] of [["cpu64", F64], ["cpu", F32]] as const) {
    const dev = await createDevice(kind);
    const head = new ClassifierHead({
      scaleChannels: [2, 8],
      hidden: 5,
      classes: 3,
      rng: new Rng(4),
      device: dev,
    });
    const feats: Tensor[] = xs.map((x, i) => tensor(x, shapes[i], dev));
    const logits = noGrad(() => head.apply(feats));
    assertEquals(logits.shape, [3, 3]);
    const p = new Map(
      await Promise.all(
        head.parameters().map(async (q) => [q.name, Float64Array.from(await q.value.read())] as const),
      ),
    );
    const pooled = shapes.map((s, i) =>
      branchRef(
        xs[i],
        s,
        p.get(`classification_heads.${i}.0.weight`)!,
        p.get(`classification_heads.${i}.0.bias`)!,
        5,
      )
    );
    const wl = p.get("logit_layer.weight")!;
    const bl = p.get("logit_layer.bias")!;
    const want: number[] = [];
    for (let n = 0; n < 3; n++) {
      const h = [...pooled[0][n], ...pooled[1][n]];
      for (let k = 0; k < 3; k++) want.push(bl[k] + h.reduce((s, v, j) => s + v * wl[k * 10 + j], 0));
    }
    assertClose(await logits.read(), want, tol, `${kind} logits`);
    const grads = await parameterGradients(head, () => crossEntropy(head.apply(feats), [0, 2, 1]));
    for (const [name, g] of grads) {
      assertTrue(g.every(Number.isFinite), `finite gradient of ${name}`);
      assertTrue(g.some((v) => v !== 0), `non-zero gradient of ${name}`);
    }
  }
});

Deno.test("classifier head: names, default width, errors", async () => {
  const dev = await createDevice("cpu64");
  const head = new ClassifierHead({ scaleChannels: [12, 48, 48], rng: new Rng(1), device: dev });
  assertEquals(head.hidden, 256);
  assertEquals(head.parameters().slice(0, 4).map((p) => p.name), [
    "classification_heads.0.0.weight",
    "classification_heads.0.0.bias",
    "classification_heads.0.1.weight",
    "classification_heads.0.1.bias",
  ]);
  assertEquals(head.parameters().at(-2)!.name, "logit_layer.weight");
  assertEquals(head.parameters().at(-2)!.value.shape, [10, 768]);
  assertEquals(
    head.buffers().map((b) => b.name),
    [0, 1, 2].map((i) => `classification_heads.${i}.1.initialized`),
  );
  assertThrows(
    () => tidy(() => head.apply([tensor([1], [1, 1, 1, 1], dev)])),
    /from 1 feature maps: the head has 3/,
  );
});
