// Entry point of the manifest language features: the language service (one method per LSP feature, service.ts)
// and what the CLI needs beside it. Code outside server/src/manifest imports from here, not from the feature
// files (the unit tests and benches, which test one feature at a time, are the exception).
export { DIAGNOSTIC_SOURCE, type DiagnosticCode, DiagnosticCodes } from './codes';
export type { ManifestDoc } from './document';
export { FileCache } from './files';
export {
  getLanguageService,
  type LanguageServiceDeps,
  type ManifestLanguageService,
  type ManifestState,
} from './service';
export { drain, type Steps } from './steps';
