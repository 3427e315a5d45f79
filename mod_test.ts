/**
 * Import by URL, for real: serve this repository over HTTP on 127.0.0.1, import `mod.ts` from that
 * URL in a fresh Deno process started in another folder, and run a small computation with a gradient
 * and a tiny ResidualFlow's bits/dim.
 */
import { assertEquals, assertTrue } from "./lib/testing/asserts.ts";

const root = new URL(".", import.meta.url);

const CONTENT_TYPES: Record<string, string> = {
  ".ts": "application/typescript",
  ".json": "application/json",
  ".md": "text/markdown",
};

Deno.test("mod.ts imported by URL from a local HTTP server runs a gradient in a fresh process", async () => {
  const served: string[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
    const path = decodeURIComponent(new URL(req.url).pathname);
    if (path.includes("..")) return new Response("bad path", { status: 400 });
    served.push(path);
    try {
      const body = await Deno.readFile(new URL(`.${path}`, root));
      const ext = path.slice(path.lastIndexOf("."));
      return new Response(body, {
        headers: { "content-type": CONTENT_TYPES[ext] ?? "application/octet-stream" },
      });
    } catch {
      return new Response("not found", { status: 404 });
    }
  });
  const port = (server.addr as Deno.NetAddr).port;
  const dir = await Deno.makeTempDir({ prefix: "resflow_url_" });
  try {
    const script = `
import { createDevice, grad, mul, requireGrad, setDefaultDevice, sum, tensor, tanh } from "http://127.0.0.1:${port}/mod.ts";
setDefaultDevice(await createDevice("cpu"));
const x = requireGrad(tensor([0.5, -1, 2]));
const [dx] = grad(sum(mul(tanh(x), x)), [x]);
console.log(JSON.stringify(Array.from(await dx.read())));
const { makeConfig, mean, rand, ResidualFlow, Rng } = await import("http://127.0.0.1:${port}/mod.ts");
const device = await createDevice("cpu");
const model = new ResidualFlow(makeConfig({ inputShape: [1, 8, 8], nBlocks: [1, 1], hiddenChannels: 4, fcEnd: false }), { rng: new Rng(0), device });
const out = model.forward(rand([2, 1, 8, 8], new Rng(1), device), { training: false, rng: new Rng(2) });
console.log("bpd " + (await mean(model.bitsPerDim(out.logpx)).item()));
`;
    await Deno.writeTextFile(`${dir}/main.ts`, script);
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-import=127.0.0.1:" + port, "--no-lock", "--no-config", "--quiet", "main.ts"],
      cwd: dir,
      env: { DENO_DIR: `${dir}/deno_dir`, NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stdout = new TextDecoder().decode(out.stdout).trim();
    const stderr = new TextDecoder().decode(out.stderr);
    assertEquals(out.code, 0, `child failed: ${stderr}`);
    const lines = stdout.split("\n");
    const bpd = Number(lines.pop()!.replace("bpd ", ""));
    // An untrained tiny flow on uniform noise: finite bits/dim of the order of 8.
    assertTrue(Number.isFinite(bpd) && bpd > 1 && bpd < 20, `bits/dim of a tiny ResidualFlow: ${bpd}`);
    const got = JSON.parse(lines.pop()!) as number[];
    // d/dx [x tanh x] = tanh x + x (1 - tanh² x)
    const want = [0.5, -1, 2].map((x) => Math.tanh(x) + x * (1 - Math.tanh(x) ** 2));
    got.forEach((g, i) => assertTrue(Math.abs(g - want[i]) < 1e-5, `dx[${i}] = ${g}, expected ${want[i]}`));
    assertTrue(served.includes("/mod.ts"), "mod.ts was fetched over HTTP");
  } finally {
    await server.shutdown();
    await Deno.remove(dir, { recursive: true });
  }
});
