// The manifest language service: one object whose methods answer each LSP feature over a parsed manifest and the
// files beside it, in the manner of vscode-json-languageservice. It knows nothing of connections, open documents
// or watchers (server.ts and ../lsp/ wire those): each method takes the document's state and a position.
import { pathToFileURL } from 'node:url';
import type {
  CodeAction,
  CodeLens,
  CompletionItem,
  Diagnostic,
  DocumentSymbol,
  FoldingRange,
  Hover,
  Location,
  Position,
} from 'vscode-languageserver-types';
import type { ManifestSummary } from '../protocol';
import { codeActions } from './code-actions';
import { codeLenses } from './code-lens';
import { completion } from './completion';
import { definition } from './definition';
import { type ManifestDoc, parseManifest, parseManifestSteps, warmSteps } from './document';
import { FileCache, type ManifestFiles, manifestFiles, type SideState } from './files';
import { hover } from './hover';
import type { NpzState } from './npz-index';
import type { ReportState } from './report';
import type { Steps } from './steps';
import { summarize } from './summary';
import { documentSymbols, foldingRanges } from './symbols';
import { validateDoc, validateDocSteps } from './validate';

/** What the service knows of one manifest: its parse and the NPZ and report beside it (once loaded). */
export interface ManifestState {
  doc: ManifestDoc;
  /** File system path of the manifest (undefined for an untitled or non-file document). */
  path?: string;
  files?: ManifestFiles;
  npz?: NpzState;
  report?: ReportState;
  /** The tokenizer, tokenizer config and generation config the manifest names, as read. */
  side?: SideState[];
  /** The diagnostics last published for this state (code actions fall back to them). */
  diagnostics?: Diagnostic[];
}

export interface LanguageServiceDeps {
  /** Cache of NPZ indexes and reports (shared so that watchers can invalidate it). */
  files?: FileCache;
}

export interface ManifestLanguageService {
  parseManifest(text: string): ManifestDoc;
  /** parseManifest in steps (to run in slices), with the tree and line index that positions need built too. */
  parseSteps(text: string): Steps<ManifestDoc>;
  /** Loads the NPZ and report beside the manifest into the state; returns the paths read (to watch). */
  loadFiles(state: ManifestState): Promise<string[]>;
  doValidation(state: ManifestState): Diagnostic[];
  /** doValidation in steps (to run in slices): the same diagnostics. */
  validationSteps(state: ManifestState): Steps<Diagnostic[]>;
  doHover(state: ManifestState, position: Position): Hover | null;
  doComplete(state: ManifestState, position: Position): CompletionItem[];
  findDocumentSymbols(state: ManifestState): DocumentSymbol[];
  getFoldingRanges(state: ManifestState): FoldingRange[];
  getCodeLenses(state: ManifestState): CodeLens[];
  getCodeActions(state: ManifestState, uri: string, diagnostics: Diagnostic[]): CodeAction[];
  findDefinition(state: ManifestState, position: Position): Location | null;
  getSummary(state: ManifestState): ManifestSummary;
}

const exists = (s: NpzState | ReportState | undefined) => !!s && !('problem' in s && s.problem === 'missing');

function fileUris(st: ManifestState) {
  const npzUri = st.files?.npzPath && exists(st.npz) ? pathToFileURL(st.files.npzPath).href : undefined;
  const reportUri = st.files?.reportPath && exists(st.report) ? pathToFileURL(st.files.reportPath).href : undefined;
  const sideUris: Record<string, string> = {};
  for (const s of st.side ?? [])
    if (!('problem' in s && s.problem === 'missing')) sideUris[s.key] = pathToFileURL(s.file).href;
  return { npzUri, reportUri, sideUris };
}

/** Diagnostics from the client carry our `data`; when a client drops it, use ours at the same range and code. */
function withOurData(ours: Diagnostic[], theirs: Diagnostic[]): Diagnostic[] {
  return theirs.map((d) => {
    if (d.data !== undefined) return d;
    const same = ours.find(
      (o) =>
        o.code === d.code &&
        o.range.start.line === d.range.start.line &&
        o.range.start.character === d.range.start.character,
    );
    return same ?? d;
  });
}

export function getLanguageService(deps: LanguageServiceDeps = {}): ManifestLanguageService {
  const cache = deps.files ?? new FileCache();
  const offset = (st: ManifestState, p: Position) => st.doc.lines.offsetAt(p);
  const summary = (st: ManifestState): ManifestSummary =>
    summarize(st.doc, {
      npz: st.npz,
      report: st.report,
      npzPath: st.files?.npzPath ?? null,
      reportPath: exists(st.report) ? (st.files?.reportPath ?? null) : null,
    });
  return {
    parseManifest,
    async loadFiles(st) {
      if (!st.path) return [];
      const f = manifestFiles(st.doc, st.path);
      st.files = f;
      const side = f.side ?? [];
      const [npz, report, ...sides] = await Promise.all([
        f.npzPath ? cache.getNpz(f.npzPath) : undefined,
        f.reportPath ? cache.getReport(f.reportPath, f.reportNamed) : undefined,
        ...side.map((s) => cache.getSide(s.path, s.key)),
      ]);
      st.npz = npz;
      st.report = report;
      st.side = sides as SideState[];
      return [f.npzPath, f.reportPath, ...side.map((s) => s.path)].filter((p): p is string => !!p);
    },
    *parseSteps(text) {
      const doc = yield* parseManifestSteps(text);
      yield* warmSteps(doc);
      return doc;
    },
    doValidation: (st) => validateDoc(st.doc, { manifestPath: st.path, npz: st.npz, report: st.report, side: st.side }),
    *validationSteps(st) {
      yield* warmSteps(st.doc);
      return yield* validateDocSteps(st.doc, { manifestPath: st.path, npz: st.npz, report: st.report, side: st.side });
    },
    doHover: (st, p) => hover(st.doc, offset(st, p), { npz: st.npz, report: st.report, side: st.side }),
    doComplete: (st, p) => completion(st.doc, offset(st, p), { npz: st.npz }),
    findDocumentSymbols: (st) => documentSymbols(st.doc),
    getFoldingRanges: (st) => foldingRanges(st.doc),
    getCodeLenses: (st) => codeLenses(summary(st), fileUris(st)),
    getCodeActions: (st, uri, diagnostics) =>
      codeActions(st.doc, withOurData(st.diagnostics ?? [], diagnostics), { uri, npz: st.npz }),
    findDefinition: (st, p) => definition(st.doc, offset(st, p), fileUris(st)),
    getSummary: summary,
  };
}
