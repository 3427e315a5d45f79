/**
 * Compute-pipeline cache keyed by WGSL source plus entry point, and compile-error formatting.
 *
 * {@link PipelineCache.get} is synchronous (op methods never await): it creates the pipeline inside a
 * validation error scope and, if the scope reports an error, formats it with the shader's compilation
 * messages (line, column, message and the offending source lines) and records it; the backend surfaces
 * recorded errors at its next `read()`/`sync()`. {@link compileComputePipeline} is the awaited variant that
 * rejects with the formatted message.
 * @module
 */

/** A compiled pipeline and its bind-group layout (group 0). */
export interface CachedPipeline {
  /** The compute pipeline (layout "auto", or explicit with a dynamic uniform offset). */
  readonly pipeline: GPUComputePipeline;
  /** Its bind group 0 layout. */
  readonly layout: GPUBindGroupLayout;
  /**
   * True when binding 0 is a uniform buffer with a dynamic offset (see {@link PipelineCache.getDynamic}):
   * bind groups then name buffers only and can be reused with another offset.
   */
  readonly dynamicUniform?: boolean;
}

/**
 * The explicit group-0 layout entries of `code` when every binding is `@group(0) @binding(n) var<...>`
 * with binding 0 `uniform` and the others `storage, read` or `storage, read_write`, numbered 0..n-1;
 * null otherwise (textures, other groups, gaps).
 */
export function dynamicUniformLayout(code: string): GPUBindGroupLayoutEntry[] | null {
  const all = code.match(/@binding\(/g)?.length ?? 0;
  const found = [...code.matchAll(/@group\(0\)\s*@binding\((\d+)\)\s*var<([^>]*)>/g)];
  if (found.length === 0 || found.length !== all) return null;
  const entries: GPUBindGroupLayoutEntry[] = [];
  for (const [, n, kind] of found) {
    const binding = Number(n);
    const k = kind.replace(/\s+/g, "");
    let type: GPUBufferBindingType;
    if (k === "uniform" && binding === 0) type = "uniform";
    else if (k === "storage,read" && binding > 0) type = "read-only-storage";
    else if (k === "storage,read_write" && binding > 0) type = "storage";
    else return null;
    entries.push({
      binding,
      visibility: GPUShaderStage.COMPUTE,
      buffer: type === "uniform" ? { type, hasDynamicOffset: true } : { type },
    });
  }
  entries.sort((a, b) => a.binding - b.binding);
  if (entries.some((e, i) => e.binding !== i)) return null;
  return entries;
}

/** Lines of `code` around 1-based line `line`, numbered, with a caret under column `col`. */
function sourceExcerpt(code: string, line: number, col: number, context = 2): string {
  const lines = code.split("\n");
  const out: string[] = [];
  const from = Math.max(1, line - context), to = Math.min(lines.length, line + context);
  const width = String(to).length;
  for (let l = from; l <= to; l++) {
    out.push(`${l === line ? ">" : " "} ${String(l).padStart(width)} | ${lines[l - 1]}`);
    if (l === line && col >= 1) out.push(`  ${" ".repeat(width)} | ${" ".repeat(col - 1)}^`);
  }
  return out.join("\n");
}

/** Formats compilation messages as "label:line:column: type: message" followed by the source lines. */
export function formatCompilationMessages(
  label: string,
  code: string,
  messages: readonly GPUCompilationMessage[],
): string {
  const parts: string[] = [];
  for (const m of messages) {
    const text = m.message.trim();
    if (m.lineNum > 0) {
      parts.push(`${label}:${m.lineNum}:${m.linePos}: ${m.type}: ${text.split("\n")[0]}`);
      parts.push(sourceExcerpt(code, m.lineNum, m.linePos));
    } else {
      parts.push(`${label}: ${m.type}: ${text}`);
    }
  }
  return parts.join("\n");
}

/** Builds the full error message of a failed compile: compilation messages if any, else the scope error. */
async function describeFailure(
  module: GPUShaderModule,
  label: string,
  code: string,
  scopeMessage: string,
): Promise<string> {
  const info = await module.getCompilationInfo();
  const errors = info.messages.filter((m) => m.type === "error");
  const detail = errors.length > 0 ? formatCompilationMessages(label, code, errors) : scopeMessage.trim();
  return `Cannot compile WGSL kernel "${label}":\n${detail}`;
}

/**
 * Compiles `code` and resolves with the pipeline, or rejects with an error naming the line, column,
 * message and the offending source lines.
 */
export async function compileComputePipeline(
  device: GPUDevice,
  code: string,
  label = "kernel",
  entryPoint = "main",
): Promise<GPUComputePipeline> {
  device.pushErrorScope("validation");
  const module = device.createShaderModule({ code, label });
  const pipeline = device.createComputePipeline({ layout: "auto", compute: { module, entryPoint }, label });
  const err = await device.popErrorScope();
  if (err) throw new Error(await describeFailure(module, label, code, err.message));
  return pipeline;
}

/** Pipelines by WGSL source and entry point. */
export class PipelineCache {
  readonly #device: GPUDevice;
  readonly #map = new Map<string, CachedPipeline>();
  readonly #pending = new Set<Promise<void>>();
  #firstError: string | null = null;

  /** A cache creating pipelines on `device`. */
  constructor(device: GPUDevice) {
    this.#device = device;
  }

  /** Number of distinct pipelines compiled so far. */
  get size(): number {
    return this.#map.size;
  }

  /**
   * The pipeline for `code` (compiling it on first use). Never awaits; a compile failure is recorded and
   * reported by {@link PipelineCache.checkErrors}.
   */
  get(code: string, label: string, entryPoint = "main"): CachedPipeline {
    const key = `${entryPoint}\u0000${code}`;
    const hit = this.#map.get(key);
    if (hit) return hit;
    const device = this.#device;
    device.pushErrorScope("validation");
    const module = device.createShaderModule({ code, label });
    const pipeline = device.createComputePipeline({ layout: "auto", compute: { module, entryPoint }, label });
    const layout = pipeline.getBindGroupLayout(0);
    const check = device.popErrorScope().then(async (err) => {
      if (err && this.#firstError === null) {
        this.#firstError = await describeFailure(module, label, code, err.message);
      }
    });
    this.#pending.add(check);
    check.finally(() => this.#pending.delete(check));
    const entry = { pipeline, layout };
    this.#map.set(key, entry);
    return entry;
  }

  /**
   * Like {@link PipelineCache.get}, with an explicit layout whose uniform binding 0 has a dynamic offset
   * when {@link dynamicUniformLayout} accepts the source (else the "auto" layout, `dynamicUniform` unset).
   */
  getDynamic(code: string, label: string, entryPoint = "main"): CachedPipeline {
    const entries = dynamicUniformLayout(code);
    if (entries === null) return this.get(code, label, entryPoint);
    const key = `dyn\u0000${entryPoint}\u0000${code}`;
    const hit = this.#map.get(key);
    if (hit) return hit;
    const device = this.#device;
    device.pushErrorScope("validation");
    const module = device.createShaderModule({ code, label });
    const layout = device.createBindGroupLayout({ entries, label });
    const pipeline = device.createComputePipeline({
      layout: device.createPipelineLayout({ bindGroupLayouts: [layout] }),
      compute: { module, entryPoint },
      label,
    });
    this.#watch(device.popErrorScope(), module, label, code);
    const entry = { pipeline, layout, dynamicUniform: true };
    this.#map.set(key, entry);
    return entry;
  }

  #watch(scope: Promise<GPUError | null>, module: GPUShaderModule, label: string, code: string): void {
    const check = scope.then(async (err) => {
      if (err && this.#firstError === null) {
        this.#firstError = await describeFailure(module, label, code, err.message);
      }
    });
    this.#pending.add(check);
    check.finally(() => this.#pending.delete(check));
  }

  /** Waits for outstanding compile checks; throws the first compile error seen, if any. */
  async checkErrors(): Promise<void> {
    while (this.#pending.size > 0) await Promise.all([...this.#pending]);
    if (this.#firstError !== null) throw new Error(this.#firstError);
  }
}
