/**
 * Tests of `deno task data`, run as a subprocess as a user would: --help, option errors, --list, and
 * downloads from a local HTTP server on 127.0.0.1 (through --base-url) that succeed or fail cleanly.
 * @module
 */
import { assertEquals, assertTrue } from "../../lib/testing/asserts.ts";
import { encodeNpy } from "../../lib/data/npy.ts";

const SCRIPT = new URL("./data.ts", import.meta.url).pathname;
const ROOT = new URL("../../", import.meta.url).pathname;
const CELEBA = "celeba_full_64x64_5bit.npy";

interface Run {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `deno task data` with `args`; `env` is added to a copy of this process's environment. */
async function runData(args: string[], env: Record<string, string> = {}): Promise<Run> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", SCRIPT, ...args],
    cwd: ROOT,
    env: { NO_COLOR: "1", ...env },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/** True when `text` holds a JavaScript stack trace or Deno's "Uncaught" report. */
function hasStackTrace(text: string): boolean {
  return /\n\s+at .+[:)]/.test(text) || /Uncaught/.test(text);
}

/** Serves `files` by name on 127.0.0.1 (a free port) while `fn` runs. */
async function withServer(files: Record<string, Uint8Array>, fn: (base: string) => Promise<void>) {
  const ac = new AbortController();
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, signal: ac.signal, onListen: () => {} },
    (req) => {
      const body = files[new URL(req.url).pathname.slice(1)];
      return body
        ? new Response(body as Uint8Array<ArrayBuffer>)
        : new Response("not found", { status: 404 });
    },
  );
  try {
    await fn(`http://127.0.0.1:${server.addr.port}`);
  } finally {
    ac.abort();
    await server.finished;
  }
}

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "resflow-data-cli-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function listDir(dir: string): Promise<string[]> {
  const out: string[] = [];
  try {
    for await (const e of Deno.readDir(dir)) out.push(e.name);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  return out.sort();
}

Deno.test("deno task data", async (t) => {
  await t.step("--help prints the usage, the dataset names and every option, and exits 0", async () => {
    const r = await runData(["--help"]);
    assertEquals(r.code, 0, r.stderr);
    for (
      const s of [
        "Usage: deno task data <name>",
        "cifar10",
        "celeba5bit",
        "--data-dir",
        "--base-url",
        "--list",
      ]
    ) {
      assertTrue(r.stdout.includes(s), `--help lacks ${s}:\n${r.stdout}`);
    }
  });

  await t.step(
    "an unknown option is rejected with the list of valid ones, without a stack trace",
    async () => {
      const r = await runData(["cifar10", "--no-such-option"]);
      assertEquals(r.code, 2, r.stderr);
      assertTrue(/no-such-option/.test(r.stderr), r.stderr);
      assertTrue(
        /Valid options: --data-dir, --list, --base-url, --keep-archive, --help/.test(r.stderr),
        r.stderr,
      );
      assertTrue(!hasStackTrace(r.stderr), r.stderr);
    },
  );

  await t.step("an unknown dataset name is rejected, naming the valid ones", async () => {
    const r = await runData(["cifar100"]);
    assertEquals(r.code, 2, r.stderr);
    assertTrue(/"cifar100".*expected one of mnist, cifar10, cifar10-exact, svhn/.test(r.stderr), r.stderr);
    assertTrue(!hasStackTrace(r.stderr), r.stderr);
  });

  await t.step("--list names every dataset with its official address", async () => {
    const r = await runData(["--list", "--data-dir", "/some/data"]);
    assertEquals(r.code, 0, r.stderr);
    assertTrue(r.stdout.startsWith("Data folder: /some/data"), r.stdout);
    for (
      const s of [
        "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz",
        "http://ufldl.stanford.edu/housenumbers/train_32x32.mat",
        "https://image-net.org/",
        "celeba_full_64x64_5bit.npy",
        "/some/data/svhn/test_32x32.mat",
      ]
    ) assertTrue(r.stdout.includes(s), `--list lacks ${s}:\n${r.stdout}`);
  });

  const good = encodeNpy("|u1", [2, 4, 4, 3], new Uint8Array(96).map((_, i) => i % 32));
  const corrupted = encodeNpy("|u1", [2, 4, 4, 3], new Uint8Array(96).fill(200));

  await t.step(
    "a download from a local server (--base-url) is checked and written into --data-dir",
    async () => {
      await withServer({ [CELEBA]: good }, async (base) => {
        await withTempDir(async (dir) => {
          const r = await runData(["celeba5bit", "--data-dir", dir, "--base-url", base]);
          assertEquals(r.code, 0, r.stderr);
          assertEquals(await Deno.readFile(`${dir}/celeba/${CELEBA}`), good);
          assertEquals(await listDir(`${dir}/celeba`), [CELEBA]);
          assertTrue(/verified by format parser/.test(r.stdout), r.stdout);
        });
      });
    },
  );

  await t.step("without --data-dir the folder comes from RESFLOW_DATA_DIR", async () => {
    await withServer({ [CELEBA]: good }, async (base) => {
      await withTempDir(async (dir) => {
        const r = await runData(["celeba5bit", "--base-url", base], { RESFLOW_DATA_DIR: dir });
        assertEquals(r.code, 0, r.stderr);
        assertEquals(await listDir(`${dir}/celeba`), [CELEBA]);
      });
    });
  });

  await t.step("a corrupted download fails with exit 1, a one-message error and no file left", async () => {
    await withServer({ [CELEBA]: corrupted }, async (base) => {
      await withTempDir(async (dir) => {
        const r = await runData(["celeba5bit", "--data-dir", dir, "--base-url", base]);
        assertEquals(r.code, 1, r.stderr);
        assertTrue(/^Cannot accept the download of .*value 200/.test(r.stderr), r.stderr);
        assertTrue(!hasStackTrace(r.stderr), r.stderr);
        assertEquals(await listDir(`${dir}/celeba`), []);
      });
    });
  });

  await t.step("an unreachable server fails with exit 1 and no stack trace", async () => {
    // A port that was just free: nothing listens there any more.
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = (listener.addr as Deno.NetAddr).port;
    listener.close();
    await withTempDir(async (dir) => {
      const r = await runData(["celeba5bit", "--data-dir", dir, "--base-url", `http://127.0.0.1:${port}`]);
      assertEquals(r.code, 1, r.stderr);
      assertTrue(
        /^Cannot download http:\/\/127\.0\.0\.1:\d+\/celeba_full_64x64_5bit\.npy/.test(r.stderr),
        r.stderr,
      );
      assertTrue(!hasStackTrace(r.stderr), r.stderr);
    });
  });

  await t.step(
    "Ctrl-C (SIGINT) mid-transfer stops it, removes the .part file and prints one line",
    async () => {
      // An endless, slow body: 16 kB every 20 ms.
      const ac = new AbortController();
      const server = Deno.serve(
        { hostname: "127.0.0.1", port: 0, signal: ac.signal, onListen: () => {} },
        () => {
          let timer: ReturnType<typeof setInterval> | undefined;
          const body = new ReadableStream<Uint8Array>({
            start(c) {
              timer = setInterval(() => c.enqueue(new Uint8Array(16384)), 20);
            },
            cancel() {
              clearInterval(timer);
            },
          });
          return new Response(body);
        },
      );
      try {
        await withTempDir(async (dir) => {
          const child = new Deno.Command(Deno.execPath(), {
            args: [
              "run",
              "-A",
              "--quiet",
              SCRIPT,
              "celeba5bit",
              "--data-dir",
              dir,
              "--base-url",
              `http://127.0.0.1:${server.addr.port}`,
            ],
            cwd: ROOT,
            env: { NO_COLOR: "1" },
            stdout: "piped",
            stderr: "piped",
          }).spawn();
          // Wait for the temporary file to grow, then interrupt.
          const deadline = Date.now() + 30_000;
          while (
            !(await listDir(`${dir}/celeba`)).some((n) => n.endsWith(".part")) && Date.now() < deadline
          ) {
            await new Promise((r) => setTimeout(r, 100));
          }
          assertTrue((await listDir(`${dir}/celeba`)).some((n) => n.endsWith(".part")), "no transfer began");
          child.kill("SIGINT");
          const out = await child.output();
          const stderr = new TextDecoder().decode(out.stderr);
          assertEquals(out.code, 1, stderr);
          const lines = stderr.split("\n").filter((l) => l.trim() !== "" && !/celeba\/celeba_full/.test(l));
          assertTrue(
            /^Cannot download .*celeba_full_64x64_5bit\.npy: interrupted after [\d,]+ bytes; the partial file was removed\.$/
              .test(
                stderr.split("\n").findLast((l) => l.trim() !== "") ?? "",
              ),
            stderr,
          );
          assertTrue(lines.length <= 1 && !hasStackTrace(stderr), stderr);
          assertEquals(await listDir(`${dir}/celeba`), []);
        });
      } finally {
        ac.abort();
        await server.finished;
      }
    },
  );

  await t.step("a download killed with SIGKILL leaves a .part that the next run removes", async () => {
    const ac = new AbortController();
    let slow = true;
    const server = Deno.serve(
      { hostname: "127.0.0.1", port: 0, signal: ac.signal, onListen: () => {} },
      () => {
        if (!slow) return new Response(good as Uint8Array<ArrayBuffer>);
        let timer: ReturnType<typeof setInterval> | undefined;
        return new Response(
          new ReadableStream<Uint8Array>({
            start: (c) => void (timer = setInterval(() => c.enqueue(new Uint8Array(16384)), 20)),
            cancel: () => clearInterval(timer),
          }),
        );
      },
    );
    const base = `http://127.0.0.1:${server.addr.port}`;
    try {
      await withTempDir(async (dir) => {
        const child = new Deno.Command(Deno.execPath(), {
          args: ["run", "-A", "--quiet", SCRIPT, "celeba5bit", "--data-dir", dir, "--base-url", base],
          cwd: ROOT,
          stdout: "null",
          stderr: "null",
        }).spawn();
        const parts = async () => (await listDir(`${dir}/celeba`)).filter((n) => n.endsWith(".part"));
        const deadline = Date.now() + 30_000;
        while ((await parts()).length === 0 && Date.now() < deadline) {
          await new Promise((r) => setTimeout(r, 100));
        }
        child.kill("SIGKILL");
        await child.status;
        assertEquals((await parts()).length, 1, "the killed run leaves its .part");
        await new Promise((r) => setTimeout(r, 1100)); // older than a just-created file
        slow = false;
        const r = await runData(["celeba5bit", "--data-dir", dir, "--base-url", base]);
        assertEquals(r.code, 0, r.stderr);
        assertEquals(await listDir(`${dir}/celeba`), [CELEBA]);
      });
    } finally {
      ac.abort();
      await server.finished;
    }
  });
});
