/**
 * The one error type of the checkpoint reader.
 * @module
 */

/**
 * An expected failure to read a PyTorch checkpoint (truncated, damaged, not a checkpoint, a pickle that
 * asks for code to run). Its message says which file, what was found and what was expected; print the
 * message alone, the stack is noise.
 */
export class TorchFileError extends Error {
  /** The file concerned, when known. */
  readonly path?: string;

  /** Builds the error; `path` names the file concerned. */
  constructor(message: string, path?: string) {
    super(message);
    this.name = "TorchFileError";
    this.path = path;
  }
}
