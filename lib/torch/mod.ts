/**
 * A PyTorch checkpoint reader that needs no Python and never executes anything from the file: both
 * `torch.save` formats (ZIP and legacy), tensors copied into typed arrays, every other object kept as
 * an inert record.
 *
 * ```ts
 * import { asTensorMap, namespaceToRecord, readTorchCheckpoint } from "./mod.ts";
 * const ckpt = await readTorchCheckpoint("model.pth");
 * const weights = asTensorMap(ckpt.root.get("state_dict"), "model.pth state_dict");
 * const args = namespaceToRecord(ckpt.root.get("args"));
 * ```
 * @module
 */
export { TorchFileError } from "./errors.ts";
export {
  isGlobal,
  isRefusedCallable,
  MAX_MARKS,
  MAX_MEMO,
  MAX_STACK,
  opcodeName,
  pickledDictState,
  unpickle,
  type UnpickleOptions,
  type UnpickleResult,
} from "./pickle.ts";
export { ELEMENT_SIZE, tensorToFloat32, tensorToFloat64 } from "./tensor.ts";
export {
  EXPANSION_SLACK_BYTES,
  LEGACY_MAGIC,
  LEGACY_PROTOCOL_VERSION,
  MAX_EXPANSION,
  parseTorchFile,
  readTorchCheckpoint,
  readTorchFile,
  type TorchCheckpoint,
  type TorchFile,
} from "./torch_file.ts";
export {
  asMap,
  asTensor,
  asTensorMap,
  describeValue,
  type GlobalRef,
  isObject,
  isTensor,
  isTuple,
  namespaceToRecord,
  objectAttributes,
  type PickledObject,
  type TensorData,
  type TorchDtype,
  type TorchStorage,
  type TorchTensor,
  type TorchValue,
} from "./values.ts";
