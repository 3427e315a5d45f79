/**
 * The meta backend: runs the same code on shapes alone (no kernels, no data). Every op returns a
 * storage of the right size, so the tensor layer's byte accounting (live and peak bytes) is the same
 * as on a real device. This is how peak memory of full-size paper models is measured on any machine.
 * @module
 */
import type { Backend, Conv2dGeometry, Shape, Storage } from "./backend.ts";
import { broadcastShapes, conv2dOutputShape, sizeOf } from "./backend.ts";

class MetaStorage implements Storage {
  constructor(readonly size: number) {}
}

function s(size: number): Storage {
  return new MetaStorage(size);
}

/** Creates a meta backend (float32 sizes). Reading data throws. */
export function createMetaBackend(): Backend {
  return {
    name: "meta",
    description: "meta (shapes only, no data)",
    dtype: "float32",
    poolBytes: () => 0,
    fromArray: (data) => s(data.length),
    fill: (size) => s(size),
    read: () =>
      Promise.reject(
        new Error("Cannot read tensor data on the meta backend: it holds shapes only (use cpu or webgpu)"),
      ),
    free: () => {},
    flush: () => {},
    sync: () => Promise.resolve(),
    unary: (_op, x) => s(x.size),
    binary: (_op, _a, aShape, _b, bShape) => s(sizeOf(broadcastShapes(aShape, bShape))),
    where: (_c, _cs, _a, _as, _b, _bs, outShape) => s(sizeOf(outShape)),
    reduce: (_op, _x, shape: Shape, axes) => s(sizeOf(shape.filter((_, i) => !axes.includes(i)))),
    matmul: (_a, _b, d) => s(d.batch * d.m * d.n),
    conv2d: (_x, _w, g: Conv2dGeometry) => s(sizeOf(conv2dOutputShape(g))),
    conv2dInputGrad: (_dy, _w, g) => s(sizeOf(g.x)),
    conv2dWeightGrad: (_x, _dy, g) => s(sizeOf(g.w)),
    permute: (x) => s(x.size),
    slice: (_x, _shape, _starts, sizes) => s(sizeOf(sizes)),
    pad: (_x, shape, before, after) => s(sizeOf(shape.map((d, i) => d + before[i] + after[i]))),
    concat: (xs) => s(xs.reduce((n, x) => n + x.size, 0)),
  };
}
