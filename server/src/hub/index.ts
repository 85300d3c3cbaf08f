// The Hugging Face Hub client: download a model's files into the standard HF cache (resumable, verified), tokens
// and endpoint from the environment. Its public face; the files beside it hold one responsibility each.
export type { RemoteFile } from './api';
export { resolveToken } from './auth';
export { type DownloadedModel, downloadModel, type HubOptions, type HubProgress } from './download';
export { HubError, type HubErrorCode } from './errors';
export {
  CONFIG_FILES,
  type FileSelection,
  SAFETENSORS_INDEX,
  selectFiles,
  shardsFromIndex,
  TOKENIZER_FILES,
} from './files';
