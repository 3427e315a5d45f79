/**
 * Tests of the backward walk of `grad`: it examines only nodes created after the oldest requested input
 * (nothing upstream of an intermediate input), and gradients through pruned and unpruned walks agree with
 * the exact ones. Gradients of every op are checked by finite differences in ops/ops_grad_test.ts.
 * @module
 */
import { assertClose, assertEquals, assertTrue } from "../testing/asserts.ts";
import { grad, gradMaybe, gradWalk } from "./autograd.ts";
import { createDevice } from "./devices.ts";
import { requireGrad, tensor } from "./ops/creation.ts";
import { add, mul, tanh } from "./ops/elementwise.ts";
import { sum } from "./ops/reduce.ts";
import type { Tensor } from "./tensor.ts";

const cpu = await createDevice("cpu64");
/** Float64 CPU arithmetic on a handful of values: exact up to a few ulps. */
const TOL = { atol: 1e-12, rtol: 1e-12 };
/** Ops in the upstream chain: far more than any walk restricted to the downstream graph examines. */
const UPSTREAM = 200;

/** A leaf w and UPSTREAM ops of tanh(1.01·h) after it; returns [w, h]. */
function upstream(): [Tensor, Tensor] {
  const w = requireGrad(tensor([0.3, -0.2, 0.5], [3], cpu));
  let h = w;
  for (let i = 0; i < UPSTREAM; i++) h = tanh(mul(h, 1.01));
  return [w, h];
}

Deno.test("grad: walk restricted to what the requested inputs need", async (t) => {
  await t.step("a VJP at an intermediate tensor does not visit the graph upstream of it", async () => {
    const [w, x] = upstream();
    const out = sum(mul(x, x));
    const [gx] = grad(out, [x], { retainGraph: true });
    // sum, mul, x's node and x's parent (the boundary); the upstream chain has 2·UPSTREAM nodes.
    assertTrue(gradWalk.lastNodesVisited <= 4, `nodes visited: ${gradWalk.lastNodesVisited}`);
    assertClose(await gx.read(), Array.from(await x.read(), (v) => 2 * v), TOL);
    // The full gradient down to the leaf still walks everything and matches the chain rule.
    const [gw] = grad(out, [w]);
    assertTrue(gradWalk.lastNodesVisited > 2 * UPSTREAM, `nodes visited: ${gradWalk.lastNodesVisited}`);
    const ref = await chainRuleGradient([0.3, -0.2, 0.5]);
    assertClose(await gw.read(), ref, TOL);
  });

  await t.step("an older operand that does not lead to the input is not walked past", async () => {
    const [, old] = upstream(); // created before x: its chain is pruned
    const x = requireGrad(tensor([1, 2, 3], [3], cpu));
    const out = sum(add(mul(x, old), old));
    const [gx] = grad(out, [x]);
    assertTrue(gradWalk.lastNodesVisited <= 6, `nodes visited: ${gradWalk.lastNodesVisited}`);
    assertClose(await gx.read(), Array.from(await old.read()), TOL);
  });

  await t.step("inputs of different ages get the same gradients as requested one by one", async () => {
    const a = () => {
      const [w, x] = upstream();
      const y = requireGrad(tensor([0.7, 0.1, -0.4], [3], cpu));
      return { w, x, y, out: sum(mul(mul(x, y), add(x, 1))) };
    };
    const g1 = a();
    const [gw, gx, gy] = grad(g1.out, [g1.w, g1.x, g1.y]);
    const g2 = a();
    const [gy2] = grad(g2.out, [g2.y], { retainGraph: true });
    const [gx2] = grad(g2.out, [g2.x], { retainGraph: true });
    const [gw2] = grad(g2.out, [g2.w]);
    assertEquals(Array.from(await gy.read()), Array.from(await gy2.read()));
    assertEquals(Array.from(await gx.read()), Array.from(await gx2.read()));
    assertEquals(Array.from(await gw.read()), Array.from(await gw2.read()));
  });

  await t.step("a newer input the outputs do not depend on gives null with allowUnused", () => {
    const [w, x] = upstream();
    const out = sum(x);
    const late = requireGrad(tensor([1], [1], cpu));
    const [gw, gl] = gradMaybe(out, [w, late], { allowUnused: true });
    assertTrue(gw !== null && gl === null, "w used, late unused");
  });
});

/** d/dw Σ h(w)² for h = (tanh(1.01·))^UPSTREAM, by the chain rule in float64 on the host. */
function chainRuleGradient(w: number[]): Promise<number[]> {
  return Promise.resolve(w.map((w0) => {
    let h = w0;
    let d = 1;
    for (let i = 0; i < UPSTREAM; i++) {
      const t = Math.tanh(1.01 * h);
      d *= 1.01 * (1 - t * t);
      h = t;
    }
    return 2 * h * d;
  }));
}
