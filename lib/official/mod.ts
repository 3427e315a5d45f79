/**
 * The authors' released models in this implementation: read a checkpoint written by their `train_img.py`
 * (`.pth`, either `torch.save` format, no Python needed), build our `ResidualFlow` from its pickled
 * options, load its EMA (or raw) weights and power-iteration vectors by a structural walk of the names,
 * evaluate it under the paper's protocol, or convert it into this suite's safetensors checkpoint.
 *
 * @example
 * ```ts
 * import { createDevice, evaluatePerImage, loadDataset, loadModelFile } from "../../mod.ts";
 *
 * const device = await createDevice("cpu");
 * // EMA weights, u and v refreshed for them (as the authors evaluate and sample).
 * const { model, dataset } = await loadModelFile("mnist_resflow.pth", { device });
 * const test = await loadDataset(dataset!, { split: "test", limit: 100 });
 * const r = await evaluatePerImage(model, test, device, { seed: 0 });
 * console.log(`${r.bitsPerDim.toFixed(3)} ± ${r.standardError.toFixed(3)} bits/dim`);
 * ```
 * @module
 */
export {
  OFFICIAL_ARG_DEFAULTS,
  OFFICIAL_DATASETS,
  officialConfig,
  type OfficialModelSpec,
  officialScales,
  TRAINING_ONLY_ARGS,
} from "./args.ts";
export { BOOKKEEPING_BUFFERS, isRequiredRole, officialNames, type OfficialRole } from "./names.ts";
export {
  buildOfficialModel,
  DATA_PARALLEL_PREFIX,
  loadOfficialTensors,
  type OfficialCheckpoint,
  type OfficialLoadOptions,
  type OfficialLoadReport,
  type OfficialModel,
  type OfficialWeights,
  parseOfficialCheckpoint,
  tensorNumbers,
} from "./load.ts";
export {
  isSafetensorsHeader,
  type LoadedModelFile,
  loadModelFile,
  type LoadModelFileOptions,
  type ModelFileFormat,
  readOfficialCheckpoint,
} from "./model_file.ts";
export { convertOfficialCheckpoint, type ConvertResult } from "./convert.ts";
export {
  DEQUANT_RNG_TAG,
  evaluatePerImage,
  type PerImageOptions,
  type PerImageResult,
} from "../train/evaluate_images.ts";
export {
  type GlobalRef,
  namespaceToRecord,
  type PickledObject,
  readTorchCheckpoint,
  readTorchFile,
  type TensorData as TorchTensorData,
  type TorchCheckpoint,
  type TorchDtype,
  type TorchFile,
  TorchFileError,
  type TorchStorage,
  type TorchTensor,
  type TorchValue,
} from "../torch/mod.ts";
