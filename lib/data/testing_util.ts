/**
 * Helpers for the data tests: temporary folders, DatasetError expectations, and the golden files
 * written by NumPy and SciPy (`testdata/data/numpy_scipy_golden.json`, made by the script beside it).
 * @module
 */
import { assertTrue } from "../testing/asserts.ts";
import { DatasetError } from "./errors.ts";

/** Runs `fn` with a fresh temporary folder, removed afterwards. */
export async function withTempDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await Deno.makeTempDir({ prefix: "resflow-data-test-" });
  try {
    return await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Asserts `fn` fails with a {@link DatasetError} whose message matches every pattern; returns the message. */
export async function expectDatasetError(
  fn: () => unknown,
  ...patterns: RegExp[]
): Promise<string> {
  let caught: unknown = null;
  try {
    await fn();
  } catch (err) {
    caught = err;
  }
  assertTrue(caught !== null, "expected a DatasetError, but nothing was thrown");
  assertTrue(
    caught instanceof DatasetError,
    `expected a DatasetError, got ${(caught as Error)?.name}: ${(caught as Error)?.message}\n${
      (caught as Error)?.stack
    }`,
  );
  const msg = (caught as DatasetError).message;
  for (const p of patterns) assertTrue(p.test(msg), `message ${JSON.stringify(msg)} does not match ${p}`);
  return msg;
}

/** The golden files made by NumPy/SciPy, decoded from base64, by key. */
export async function goldenFiles(): Promise<Record<string, Uint8Array>> {
  const url = new URL("../../testdata/data/numpy_scipy_golden.json", import.meta.url);
  const json = JSON.parse(await Deno.readTextFile(url)) as Record<string, string>;
  const out: Record<string, Uint8Array> = {};
  for (const [k, v] of Object.entries(json)) out[k] = Uint8Array.from(atob(v), (c) => c.charCodeAt(0));
  return out;
}

/**
 * Serves `files` by name on 127.0.0.1 (a free port) while `fn` runs, counting requests per path;
 * any other path answers 404.
 */
export async function withServer<T>(
  files: Record<string, Uint8Array>,
  fn: (base: string, hits: Map<string, number>) => Promise<T>,
): Promise<T> {
  const hits = new Map<string, number>();
  const ac = new AbortController();
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, signal: ac.signal, onListen: () => {} },
    (req) => {
      const name = new URL(req.url).pathname.slice(1);
      hits.set(name, (hits.get(name) ?? 0) + 1);
      const body = files[name];
      return body
        ? new Response(body as Uint8Array<ArrayBuffer>)
        : new Response("not found", { status: 404 });
    },
  );
  try {
    return await fn(`http://127.0.0.1:${server.addr.port}`, hits);
  } finally {
    ac.abort();
    await server.finished;
  }
}

/** An address on 127.0.0.1 where nothing listens (a port just opened and closed again). */
export function closedPortUrl(): string {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return `http://127.0.0.1:${port}`;
}
