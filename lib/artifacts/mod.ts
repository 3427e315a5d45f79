/**
 * Artifacts: what the suite writes to disk. PNG image grids (torchvision's `make_grid` layout) and
 * plots (SVG, rasterised to PNG), versioned JSON artifacts checked against their schema, safetensors
 * files, atomic writes (temporary name, then rename) and small file-system questions.
 *
 * PNG encoding uses `npm:sharp`, loaded on first use.
 *
 * @example
 * ```ts
 * import { imageGridPng, linePlotSvg, writeFileAtomic } from "./mod.ts";
 *
 * // Four 2×2 grey images in [0, 1], NCHW, as one PNG grid of 2 columns.
 * const images = new Float32Array(4 * 1 * 2 * 2).map((_, i) => (i % 4) / 3);
 * await writeFileAtomic("grid.png", await imageGridPng(images, [4, 1, 2, 2], { nrow: 2 }));
 * const svg = linePlotSvg({
 *   title: "loss",
 *   xLabel: "step",
 *   yLabel: "bits/dim",
 *   series: [{ name: "train", x: [1, 2, 3], y: [8, 5, 4] }],
 * });
 * await writeFileAtomic("loss.svg", svg);
 * ```
 * @module
 */
export {
  type ArtifactInput,
  artifactPath,
  buildArtifact,
  type FigureInput,
  gitCommit,
  makeFigure,
  readArtifact,
  validateArtifact,
  writeArtifact,
} from "./artifact.ts";
export {
  type AtomicData,
  type AtomicWriteOptions,
  findNonFinite,
  tempNameFor,
  writeFileAtomic,
  writeFileAtomicSync,
  writeJsonAtomic,
} from "./atomic.ts";
export {
  assertCheckpointMatches,
  type CheckpointDiff,
  describeDiff,
  diffCheckpoint,
  type HasShape,
  isExactMatch,
  type ShapeMismatch,
} from "./checkpoint_match.ts";
export { isFile, isFileSync, pathExists } from "./files.ts";
export {
  barChartPng,
  type BarChartSpec,
  barChartSvg,
  type BarSeries,
  linePlotPng,
  type LinePlotSpec,
  linePlotSvg,
  type LineSeries,
  type LineStyle,
  PALETTE,
  type PlotFrame,
  type ReferenceLine,
  scatterPlotPng,
  type ScatterPlotSpec,
  scatterPlotSvg,
  type ScatterSeries,
} from "./plot.ts";
export {
  decodePng,
  encodePng,
  ensureSharp,
  type GridOptions,
  imageGrid,
  imageGridPng,
  pngInfo,
  type RawImage,
  svgToPng,
  upscale,
} from "./png.ts";
export {
  decodeSafetensors,
  type Dtype,
  DTYPE_SIZE,
  DTYPES,
  encodeSafetensors,
  loadSafetensors,
  MAX_HEADER_BYTES,
  type SafeTensor,
  type SafeTensorInput,
  type SafeTensorsFile,
  saveSafetensors,
  type TensorData,
} from "./safetensors.ts";
export {
  type Artifact,
  ARTIFACT_SCHEMA,
  ARTIFACT_SCHEMA_VERSION,
  type ClaimGate,
  type ClaimOutcome,
  claimOutcome,
  type ClaimTrend,
  type ClaimVerdict,
  type Figure,
  type PublishedRef,
  type Series,
} from "./schema.ts";
export { assertValid, type JsonSchema, validate, type ValidationError } from "./validate.ts";
