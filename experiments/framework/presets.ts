/**
 * The presets every experiment runs at (issue 5: the same code at every scale). An artifact records
 * the preset name; each experiment's plan maps a preset to its budget.
 * @module
 */

/** The presets `deno task reproduce --preset` accepts, smallest first. */
export const PRESETS = ["smoke", "quick", "long", "paper"] as const;

/** A preset name. */
export type Preset = typeof PRESETS[number];
