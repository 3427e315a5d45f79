/**
 * The one train / checkpoint / resume driver: what to do with a checkpoint already in place (resume
 * it, start afresh, or refuse), building the model and its {@link Trainer}, loading the checkpoint
 * (an error naming the file when it cannot be loaded, never a silent retrain), running the trainer
 * (its loss, evaluation and progress plugged in by the caller), then the caller's evaluation, and
 * freeing everything. The training command, the density/ablation run cache and the hybrid units use
 * it; the loop itself (non-finite step rejection, checkpoints that resume bit-exactly) is
 * {@link Trainer.run}.
 * @module
 */
import { pathExists } from "../artifacts/files.ts";
import type { CheckpointMeta } from "./checkpoint.ts";
import type { RunOptions, RunResult } from "./train_types.ts";
import type { Trainer } from "./trainer.ts";

/** What a driven run does with a checkpoint that is already at its path. */
export type ExistingCheckpoint =
  /** Continue from it (bit-equal to an uninterrupted run). */
  | "resume"
  /** Delete it and start at step 0. */
  | "restart"
  /** Throw "Cannot start training ...: pass --resume ..." before building anything. */
  | "refuse";

/** What a driven run builds: a trainer and whatever else the caller needs, freed by `dispose`. */
export interface DrivenBuild {
  /** The trainer of the run (its model, loss, data and settings). */
  readonly trainer: Trainer;
  /** Frees everything the build holds. */
  dispose(): void;
}

/** Where a driven run starts. */
export interface DrivenStart {
  /** True when a checkpoint was loaded. */
  readonly resumed: boolean;
  /** The loaded checkpoint's step (0 when none was loaded). */
  readonly resumedFrom: number;
  /** The loaded checkpoint's metadata, or null. */
  readonly meta: CheckpointMeta | null;
}

/** The options of {@link driveTraining}. */
export interface DriveOptions<B extends DrivenBuild, E> {
  /** The checkpoint of the run: loaded when resuming, written by the trainer. */
  readonly checkpointPath: string;
  /** What to do with a checkpoint already at `checkpointPath`. */
  readonly existing: ExistingCheckpoint;
  /** With `existing: "refuse"`: what the error names as the run's folder (default: the checkpoint). */
  readonly refuseWhere?: string;
  /**
   * Appended to the one-line error when the checkpoint cannot be loaded, e.g. "(delete it to train
   * again)". Absent: the loader's own (possibly multi-line) error is thrown unchanged.
   */
  readonly loadErrorHint?: string;
  /** Total steps of the run (it continues from the checkpoint's step). */
  readonly steps: number;
  /** Builds the model and trainer (after the checkpoint policy, before loading the checkpoint). */
  build(): B | Promise<B>;
  /**
   * The trainer's run options (loss-independent: evaluation, checkpoint cadence, progress), given the
   * build and where it starts; called after the checkpoint is loaded, so progress can start there.
   */
  run(built: B, start: DrivenStart): Omit<RunOptions, "steps" | "checkpointPath">;
  /** The caller's evaluation and report after the run, before everything is freed. */
  finish(built: B, result: RunResult, start: DrivenStart): E | Promise<E>;
}

/** Runs a training as {@link DriveOptions} say; returns what `finish` returns. */
export async function driveTraining<B extends DrivenBuild, E>(o: DriveOptions<B, E>): Promise<E> {
  const ck = o.checkpointPath;
  const found = await pathExists(ck);
  if (found && o.existing === "refuse") {
    throw new Error(
      `Cannot start training in ${o.refuseWhere ?? ck}: ${ck} exists; pass --resume to continue it` +
        `${o.refuseWhere ? " or choose another --out" : ""}`,
    );
  }
  if (found && o.existing === "restart") await Deno.remove(ck).catch(() => {});
  const built = await o.build();
  try {
    let meta: CheckpointMeta | null = null;
    if (found && o.existing === "resume") {
      try {
        meta = await built.trainer.loadCheckpoint(ck);
      } catch (e) {
        if (o.loadErrorHint === undefined) throw e;
        const msg = (e as Error).message.split("\n")[0];
        throw new Error(
          `${msg.includes(ck) ? msg : `Cannot load checkpoint ${ck}: ${msg}`} ${o.loadErrorHint}`,
        );
      }
    }
    const start: DrivenStart = { resumed: meta !== null, resumedFrom: meta?.step ?? 0, meta };
    const result = await built.trainer.run({ ...o.run(built, start), steps: o.steps, checkpointPath: ck });
    return await o.finish(built, result, start);
  } finally {
    built.dispose();
  }
}
