/**
 * Matching a loaded checkpoint against the tensors a model expects: which names are missing, which
 * are unexpected, which have the wrong shape. All mismatches are reported together, in one error.
 * @module
 */

/** Anything with a shape (a loaded safetensors tensor, an engine tensor). */
export interface HasShape {
  /** Sizes of each axis, outermost first. */
  readonly shape: readonly number[];
}

/** One tensor whose shape differs from the expected one. */
export interface ShapeMismatch {
  /** The tensor's name. */
  readonly name: string;
  /** The shape the model expects. */
  readonly expected: readonly number[];
  /** The shape in the file. */
  readonly found: readonly number[];
}

/** The differences between expected and loaded tensors; all lists sorted by name. */
export interface CheckpointDiff {
  /** Expected names absent from the file. */
  readonly missing: readonly string[];
  /** Names in the file that the model does not expect. */
  readonly unexpected: readonly string[];
  /** Names present in both with different shapes. */
  readonly wrongShape: readonly ShapeMismatch[];
}

function entriesOf<T>(x: ReadonlyMap<string, T> | Readonly<Record<string, T>>): [string, T][] {
  return x instanceof Map ? [...x.entries()] : Object.entries(x as Readonly<Record<string, T>>);
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/** Compares expected shapes by name with loaded tensors by name. */
export function diffCheckpoint(
  expected: ReadonlyMap<string, readonly number[]> | Readonly<Record<string, readonly number[]>>,
  loaded: ReadonlyMap<string, HasShape> | Readonly<Record<string, HasShape>>,
): CheckpointDiff {
  const want = new Map(entriesOf(expected));
  const got = new Map(entriesOf(loaded));
  const missing: string[] = [];
  const wrongShape: ShapeMismatch[] = [];
  for (const [name, shape] of want) {
    const t = got.get(name);
    if (!t) missing.push(name);
    else if (!sameShape(shape, t.shape)) wrongShape.push({ name, expected: shape, found: t.shape });
  }
  const unexpected = [...got.keys()].filter((n) => !want.has(n));
  const byName = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
  return {
    missing: missing.sort(byName),
    unexpected: unexpected.sort(byName),
    wrongShape: wrongShape.sort((a, b) => byName(a.name, b.name)),
  };
}

/** True when nothing is missing, unexpected or misshapen. */
export function isExactMatch(diff: CheckpointDiff): boolean {
  return diff.missing.length === 0 && diff.unexpected.length === 0 && diff.wrongShape.length === 0;
}

const shapeText = (s: readonly number[]) => `[${s.join(", ")}]`;
const plural = (n: number, one: string, many: string) => `${n} ${n === 1 ? one : many}`;

/** One sentence listing every mismatch, e.g. "2 missing tensors (a, b); 1 tensor with the wrong shape (c: expected [2], found [3])". */
export function describeDiff(diff: CheckpointDiff): string {
  const parts: string[] = [];
  if (diff.missing.length) {
    parts.push(
      `${plural(diff.missing.length, "missing tensor", "missing tensors")} (${diff.missing.join(", ")})`,
    );
  }
  if (diff.unexpected.length) {
    parts.push(
      `${plural(diff.unexpected.length, "unexpected tensor", "unexpected tensors")} (${
        diff.unexpected.join(", ")
      })`,
    );
  }
  if (diff.wrongShape.length) {
    parts.push(
      `${plural(diff.wrongShape.length, "tensor", "tensors")} with the wrong shape (${
        diff.wrongShape.map((m) =>
          `${m.name}: expected ${shapeText(m.expected)}, found ${shapeText(m.found)}`
        )
          .join("; ")
      })`,
    );
  }
  return parts.length ? parts.join("; ") : "all tensors match";
}

/**
 * Throws "Cannot load checkpoint <file>: <every mismatch>" unless the loaded tensors have exactly the
 * expected names and shapes. With `allowUnexpected`, extra tensors in the file are tolerated.
 */
export function assertCheckpointMatches(
  file: string,
  expected: ReadonlyMap<string, readonly number[]> | Readonly<Record<string, readonly number[]>>,
  loaded: ReadonlyMap<string, HasShape> | Readonly<Record<string, HasShape>>,
  options: { readonly allowUnexpected?: boolean } = {},
): void {
  const d = diffCheckpoint(expected, loaded);
  const diff = options.allowUnexpected ? { ...d, unexpected: [] } : d;
  if (!isExactMatch(diff)) throw new Error(`Cannot load checkpoint ${file}: ${describeDiff(diff)}`);
}
