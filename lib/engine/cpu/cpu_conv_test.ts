/**
 * Tests of the CPU backend's conv2d and its two adjoints against definition-level loops, plus
 * the adjoint identities <conv(x, w), y> = <x, dX(y, w)> = <w, dW(x, y)>.
 * @module
 */
import { assertClose, assertEquals, assertTrue } from "../../testing/asserts.ts";
import type { Conv2dGeometry } from "../backend.ts";
import { conv2dOutputShape } from "../backend.ts";
import { ADJOINT_TOL, backend, count, DTYPES, randomValues, readAll, REF_TOL, rng } from "./cpu_test_util.ts";

/** Input value x[n, c, ih, iw], zero outside the image (the padding). */
function at(x: number[], g: Conv2dGeometry, n: number, c: number, ih: number, iw: number): number {
  const [, C, H, W] = g.x;
  if (ih < 0 || ih >= H || iw < 0 || iw >= W) return 0;
  return x[((n * C + c) * H + ih) * W + iw];
}

/** y[n, o, oh, ow] = Σ_{c, ki, kj} w[o, c, ki, kj] x[n, c, oh s - p + ki, ow s - p + kj]. */
function naiveConv(x: number[], w: number[], g: Conv2dGeometry): number[] {
  const [N, O, HO, WO] = conv2dOutputShape(g);
  const [, C, KH, KW] = g.w;
  const y: number[] = [];
  for (let n = 0; n < N; n++) {
    for (let o = 0; o < O; o++) {
      for (let oh = 0; oh < HO; oh++) {
        for (let ow = 0; ow < WO; ow++) {
          let s = 0;
          for (let c = 0; c < C; c++) {
            for (let ki = 0; ki < KH; ki++) {
              for (let kj = 0; kj < KW; kj++) {
                s += w[((o * C + c) * KH + ki) * KW + kj] *
                  at(x, g, n, c, oh * g.stride - g.pad + ki, ow * g.stride - g.pad + kj);
              }
            }
          }
          y.push(s);
        }
      }
    }
  }
  return y;
}

/**
 * dx[n, c, ih, iw] = Σ over (o, ki, kj) with oh = (ih + p - ki) / s an integer in range (same for
 * ow) of w[o, c, ki, kj] dy[n, o, oh, ow]: the gather form, independent of the scatter in col2im.
 */
function naiveInputGrad(dy: number[], w: number[], g: Conv2dGeometry): number[] {
  const [N, C, H, W] = g.x;
  const [, O, HO, WO] = conv2dOutputShape(g);
  const [, , KH, KW] = g.w;
  const dx: number[] = [];
  for (let n = 0; n < N; n++) {
    for (let c = 0; c < C; c++) {
      for (let ih = 0; ih < H; ih++) {
        for (let iw = 0; iw < W; iw++) {
          let s = 0;
          for (let o = 0; o < O; o++) {
            for (let ki = 0; ki < KH; ki++) {
              for (let kj = 0; kj < KW; kj++) {
                const th = ih + g.pad - ki, tw = iw + g.pad - kj;
                if (th % g.stride !== 0 || tw % g.stride !== 0) continue;
                const oh = th / g.stride, ow = tw / g.stride;
                if (oh < 0 || oh >= HO || ow < 0 || ow >= WO) continue;
                s += w[((o * C + c) * KH + ki) * KW + kj] * dy[((n * O + o) * HO + oh) * WO + ow];
              }
            }
          }
          dx.push(s);
        }
      }
    }
  }
  return dx;
}

/** dw[o, c, ki, kj] = Σ_{n, oh, ow} x[n, c, oh s - p + ki, ow s - p + kj] dy[n, o, oh, ow]. */
function naiveWeightGrad(x: number[], dy: number[], g: Conv2dGeometry): number[] {
  const [N, O, HO, WO] = conv2dOutputShape(g);
  const [, C, KH, KW] = g.w;
  const dw: number[] = [];
  for (let o = 0; o < O; o++) {
    for (let c = 0; c < C; c++) {
      for (let ki = 0; ki < KH; ki++) {
        for (let kj = 0; kj < KW; kj++) {
          let s = 0;
          for (let n = 0; n < N; n++) {
            for (let oh = 0; oh < HO; oh++) {
              for (let ow = 0; ow < WO; ow++) {
                s += at(x, g, n, c, oh * g.stride - g.pad + ki, ow * g.stride - g.pad + kj) *
                  dy[((n * O + o) * HO + oh) * WO + ow];
              }
            }
          }
          dw.push(s);
        }
      }
    }
  }
  return dw;
}

function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

/** [N, C, H, W, O, KH, KW, stride, pad]: 1x1 and 3x3, stride 1 and 2, pad 0 and 1, odd sizes. */
const GEOMETRIES: [number, number, number, number, number, number, number, number, number][] = [
  [2, 3, 5, 4, 4, 1, 1, 1, 0],
  [2, 3, 5, 7, 2, 1, 1, 2, 0],
  [1, 2, 4, 3, 5, 1, 1, 1, 1],
  [2, 3, 5, 6, 4, 3, 3, 1, 1],
  [2, 2, 7, 5, 3, 3, 3, 1, 0],
  [2, 3, 8, 8, 5, 3, 3, 2, 1],
  [1, 2, 8, 8, 4, 3, 3, 2, 0],
  [2, 2, 7, 9, 3, 3, 3, 2, 1],
  [1, 3, 6, 5, 2, 3, 3, 2, 0],
  [1, 2, 5, 6, 4, 3, 1, 2, 1],
  [1, 1, 3, 3, 1, 3, 3, 1, 0],
];

function geometry(c: (typeof GEOMETRIES)[number]): Conv2dGeometry {
  const [n, ci, h, w, o, kh, kw, stride, pad] = c;
  return { x: [n, ci, h, w], w: [o, ci, kh, kw], stride, pad };
}

Deno.test("cpu conv2d and adjoints: against definition-level loops", async (t) => {
  for (const dtype of DTYPES) {
    for (const c of GEOMETRIES) {
      const g = geometry(c);
      const name = `${dtype} x [${g.x}] w [${g.w}] stride ${g.stride} pad ${g.pad}`;
      await t.step(name, async () => {
        const be = backend(dtype);
        const r = rng(c.reduce((a, b) => a * 7 + b, 1));
        const yShape = conv2dOutputShape(g);
        const x = randomValues(r, count(g.x), dtype);
        const w = randomValues(r, count(g.w), dtype);
        const dy = randomValues(r, count(yShape), dtype);
        const sx = be.fromArray(x), sw = be.fromArray(w), sdy = be.fromArray(dy);
        const y = await readAll(be, be.conv2d(sx, sw, g));
        assertClose(y, naiveConv(x, w, g), REF_TOL[dtype], "conv2d");
        const dx = be.conv2dInputGrad(sdy, sw, g);
        assertEquals(dx.size, count(g.x), "dx size");
        assertClose(await readAll(be, dx), naiveInputGrad(dy, w, g), REF_TOL[dtype], "conv2dInputGrad");
        const dw = be.conv2dWeightGrad(sx, sdy, g);
        assertEquals(dw.size, count(g.w), "dw size");
        assertClose(await readAll(be, dw), naiveWeightGrad(x, dy, g), REF_TOL[dtype], "conv2dWeightGrad");
      });
    }
  }
});

Deno.test("cpu conv2d: adjoint identities <conv(x,w), y> = <x, dX(y,w)> = <w, dW(x,y)>", async (t) => {
  for (const dtype of DTYPES) {
    for (const c of GEOMETRIES) {
      const g = geometry(c);
      await t.step(`${dtype} x [${g.x}] w [${g.w}] stride ${g.stride} pad ${g.pad}`, async () => {
        const be = backend(dtype);
        const r = rng(c.reduce((a, b) => a * 5 + b, 3));
        const x = be.fromArray(randomValues(r, count(g.x), dtype));
        const w = be.fromArray(randomValues(r, count(g.w), dtype));
        const y = be.fromArray(randomValues(r, count(conv2dOutputShape(g)), dtype));
        const lhs = dot(await be.read(be.conv2d(x, w, g)), await be.read(y));
        const viaX = dot(await be.read(x), await be.read(be.conv2dInputGrad(y, w, g)));
        const viaW = dot(await be.read(w), await be.read(be.conv2dWeightGrad(x, y, g)));
        assertClose(viaX, lhs, ADJOINT_TOL[dtype], "<x, dX(y, w)>");
        assertClose(viaW, lhs, ADJOINT_TOL[dtype], "<w, dW(x, y)>");
      });
    }
  }
});

Deno.test("cpu conv2d: stride 2 leaves untouched input rows and columns at exactly zero", async () => {
  // (8 - 3) / 2 is not an integer: input row 7 and column 7 are in no window.
  const g: Conv2dGeometry = { x: [1, 1, 8, 8], w: [1, 1, 3, 3], stride: 2, pad: 0 };
  const be = backend("float64");
  const dy = be.fill(count(conv2dOutputShape(g)), 1);
  const dx = await readAll(be, be.conv2dInputGrad(dy, be.fill(9, 1), g));
  assertEquals(dx.length, 64);
  for (let i = 0; i < 8; i++) {
    assertEquals(dx[7 * 8 + i], 0, `row 7, column ${i}`);
    assertEquals(dx[i * 8 + 7], 0, `row ${i}, column 7`);
  }
  assertTrue(dx[0] === 1 && dx[2] === 2 && dx[2 * 8 + 2] === 4, "covered pixels count their windows");
});
