// Public API of the manifest language features (pure functions over a parsed document, plus file loading).
export { type BitsMismatchData, crossCheck, type MemberMissingData } from './checks';
export { codeActions } from './code-actions';
export { codeLenses } from './code-lens';
export { DIAGNOSTIC_SOURCE, type DiagnosticCode, DiagnosticCodes, MAX_DEPTH, MAX_DIAGNOSTICS } from './codes';
export { completion } from './completion';
export { definition } from './definition';
export { LineIndex, type ManifestDoc, parseManifest } from './document';
export { FileCache, loadNpzIndex, loadReport, type ManifestFiles, manifestFiles } from './files';
export { hover, weightCard } from './hover';
export {
  isNpzProblem,
  type NpzIndex,
  type NpzMemberInfo,
  type NpzProblem,
  type NpzState,
  nearestMembers,
  npzIndexFromArchive,
} from './npz-index';
export { type LoadedReport, type ReportProblem, type ReportState, toLoadedReport } from './report';
export { manifestSchema, schemaAt, schemaDiagnostics } from './schema';
export { summarize, weightSize } from './summary';
export { documentSymbols, foldingRanges } from './symbols';
export { type ValidateOptions, validateDoc, validateManifest } from './validate';
