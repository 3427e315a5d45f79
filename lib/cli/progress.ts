/**
 * A progress bar for long loops (training, evaluation, sampling): count, rate and ETA. On a
 * terminal it redraws one line in place (at most every `redrawMs`); when the output is not a
 * terminal (a log file, CI) it stays quiet: one line at the start, one at each `quietStepPercent`
 * milestone, and one at the end. The clock and the writer are injectable for tests.
 * @module
 */

/** Options of a {@link ProgressBar}. */
export interface ProgressOptions {
  /** Number of items expected; 0 or undefined when unknown (no bar, no ETA). */
  readonly total?: number;
  /** Shown before the bar, e.g. "train density/mnist". */
  readonly label?: string;
  /** Unit of the items, for the rate (default "it"). */
  readonly unit?: string;
  /** Receives the text to print (default: standard output). */
  readonly write?: (text: string) => void;
  /** Whether to redraw in place (default: `Deno.stdout.isTerminal()`). */
  readonly isTerminal?: boolean;
  /** Milliseconds since some origin (default `performance.now()`). */
  readonly now?: () => number;
  /** Least time between redraws on a terminal (default 100 ms). */
  readonly redrawMs?: number;
  /** Non-terminal output prints a line each time this percentage is passed (default 25). */
  readonly quietStepPercent?: number;
  /** Width of the bar in characters (default 24). */
  readonly barWidth?: number;
  /** Terminal width; redrawn lines are cut to fit so they never wrap (default: `Deno.consoleSize()`). */
  readonly columns?: number;
}

/** Formats seconds as `45s`, `3m05s` or `2h07m`; `?` when unknown or infinite. */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return "?";
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
  const m = Math.round(s / 60);
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, "0")}m`;
}

/** Formats a rate in items per second: `12.3 it/s`, or `4.20 s/it` when slower than one a second. */
export function formatRate(itemsPerSecond: number, unit = "it"): string {
  if (!Number.isFinite(itemsPerSecond) || itemsPerSecond <= 0) return `? ${unit}/s`;
  if (itemsPerSecond < 1) return `${(1 / itemsPerSecond).toFixed(2)} s/${unit}`;
  if (itemsPerSecond < 100) return `${itemsPerSecond.toFixed(1)} ${unit}/s`;
  return `${Math.round(itemsPerSecond)} ${unit}/s`;
}

function terminalColumns(): number {
  try {
    return Deno.consoleSize().columns || 80;
  } catch {
    return 80;
  }
}

function defaultWrite(text: string): void {
  const bytes = new TextEncoder().encode(text);
  let off = 0;
  while (off < bytes.length) off += Deno.stdout.writeSync(bytes.subarray(off));
}

/** A progress bar; call {@link ProgressBar.tick} or {@link ProgressBar.update}, then {@link ProgressBar.finish}. */
export class ProgressBar {
  readonly #total: number;
  readonly #label: string;
  readonly #unit: string;
  readonly #write: (text: string) => void;
  readonly #tty: boolean;
  readonly #now: () => number;
  readonly #redrawMs: number;
  readonly #stepPercent: number;
  readonly #barWidth: number;
  readonly #columns: number;
  readonly #start: number;
  #done = 0;
  #info = "";
  #lastDraw = -Infinity;
  #nextMilestone: number;
  #finished = false;

  /** Starts the bar (the clock starts now); a non-terminal prints its first line at once. */
  constructor(options: ProgressOptions = {}) {
    this.#total = Math.max(0, options.total ?? 0);
    this.#label = options.label ?? "";
    this.#unit = options.unit ?? "it";
    this.#write = options.write ?? defaultWrite;
    this.#tty = options.isTerminal ?? Deno.stdout.isTerminal();
    this.#now = options.now ?? (() => performance.now());
    this.#redrawMs = options.redrawMs ?? 100;
    this.#stepPercent = options.quietStepPercent ?? 25;
    this.#barWidth = options.barWidth ?? 24;
    this.#columns = options.columns ?? (this.#tty ? terminalColumns() : Infinity);
    this.#start = this.#now();
    this.#nextMilestone = this.#stepPercent;
    if (this.#tty) this.#draw();
    else this.#write(`${this.#prefix()}started${this.#total ? `, ${this.#total} ${this.#unit}` : ""}\n`);
  }

  /** Items done so far. */
  get done(): number {
    return this.#done;
  }

  /** Seconds since the bar started. */
  get elapsedSeconds(): number {
    return (this.#now() - this.#start) / 1000;
  }

  /** Average items per second since the start. */
  get rate(): number {
    const t = this.elapsedSeconds;
    return t > 0 ? this.#done / t : 0;
  }

  /** Estimated seconds left (NaN when the total or the rate is unknown). */
  get etaSeconds(): number {
    if (!this.#total || this.rate <= 0) return NaN;
    return Math.max(0, this.#total - this.#done) / this.rate;
  }

  /** Adds `n` items done; `info` (e.g. "loss 3.21") replaces the text shown after the numbers. */
  tick(n = 1, info?: string): void {
    this.update(this.#done + n, info);
  }

  /** Sets the count of items done. */
  update(done: number, info?: string): void {
    if (this.#finished) return;
    this.#done = done;
    if (info !== undefined) this.#info = info;
    if (this.#tty) {
      if (this.#now() - this.#lastDraw >= this.#redrawMs) this.#draw();
    } else if (this.#total && this.#stepPercent > 0) {
      const pct = (100 * this.#done) / this.#total;
      if (pct >= this.#nextMilestone && pct < 100) {
        while (this.#nextMilestone <= pct) this.#nextMilestone += this.#stepPercent;
        this.#write(this.line() + "\n");
      }
    }
  }

  /** Ends the bar: a terminal gets its final state and a newline, other output one closing line. */
  finish(info?: string): void {
    if (this.#finished) return;
    if (info !== undefined) this.#info = info;
    this.#finished = true;
    const text = this.#compose(true);
    this.#write(this.#tty ? `\r${this.#fit(text)}\x1b[K\n` : `${text}\n`);
  }

  /** The current status as one line of text (without the terminal control codes). */
  line(): string {
    return this.#compose(false);
  }

  #compose(final: boolean): string {
    const parts: string[] = [];
    if (this.#total) {
      const frac = Math.min(1, this.#done / this.#total);
      const full = Math.round(frac * this.#barWidth);
      const bar = this.#tty ? ` [${"#".repeat(full)}${"-".repeat(this.#barWidth - full)}]` : "";
      const pct = `${Math.floor(frac * 100)}%`.padStart(4);
      parts.push(`${pct}${bar} ${this.#done}/${this.#total}`);
    } else {
      parts.push(`${this.#done} ${this.#unit}`);
    }
    parts.push(formatRate(this.rate, this.#unit));
    if (final) parts.push(`done in ${formatDuration(this.elapsedSeconds)}`);
    else {
      parts.push(`elapsed ${formatDuration(this.elapsedSeconds)}`);
      if (this.#total) parts.push(`ETA ${formatDuration(this.etaSeconds)}`);
    }
    if (this.#info) parts.push(this.#info);
    return this.#prefix() + parts.join(" · ");
  }

  #prefix(): string {
    return this.#label ? `${this.#label}: ` : "";
  }

  #draw(): void {
    this.#lastDraw = this.#now();
    this.#write(`\r${this.#fit(this.line())}\x1b[K`);
  }

  #fit(text: string): string {
    const max = this.#columns - 1;
    return text.length > max ? text.slice(0, Math.max(0, max - 1)) + "…" : text;
  }
}
