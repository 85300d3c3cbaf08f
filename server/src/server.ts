// Language server for APL manifests: LSP wiring only. The features are the language service (manifest/service.ts);
// the open documents, folder watchers, the validation debouncer and the validation runs are ./lsp modules. This file
// connects them. Parsing and validation run in slices of a few milliseconds (lsp/slices.ts), so a request never
// waits behind more than one slice of them, however large the manifest.
// Run as `node dist/server.js --stdio` (or --node-ipc), or `apl-quant lsp --stdio`.
import { basename, dirname } from 'node:path';
import {
  type Connection,
  createConnection,
  type DidChangeWatchedFilesParams,
  type InitializeResult,
  ProposedFeatures,
  type TextDocumentChangeEvent,
  TextDocumentSyncKind,
  TextDocuments,
} from 'vscode-languageserver/node';
import { TextDocument } from 'vscode-languageserver-textdocument';
import { Debouncer } from './lsp/debouncer';
import { type DocState, DocumentCache, uriToPath } from './lsp/document-cache';
import { Validator } from './lsp/validation';
import { DirWatchers } from './lsp/watchers';
import { FileCache, getLanguageService } from './manifest';
import { type LspParams, type LspRequest, LspRequests, type LspResult } from './protocol';

/** Validation waits for this pause in the edits (at most 1 s), so a burst of changes is validated once (the JSON
 * language server of VS Code waits 300 ms). */
const VALIDATION_QUIET_MS = 200;

/** Registers a handler for a custom request declared in protocol.ts, typed by its declaration. */
function onLspRequest<T extends LspRequest<unknown, unknown>>(
  connection: Connection,
  request: T,
  handler: (params: LspParams<T>) => LspResult<T> | Promise<LspResult<T>>,
): void {
  connection.onRequest(request.method, (p: LspParams<T>) => handler(p));
}

/** Starts the manifest language server on a connection (default: from process.argv: --stdio, --node-ipc, ...). */
export function startServer(connection: Connection = createConnection(ProposedFeatures.all)): Connection {
  const documents: TextDocuments<TextDocument> = new TextDocuments(TextDocument);
  const files = new FileCache();
  const service = getLanguageService({ files });
  const states = new DocumentCache(service, (uri) => documents.get(uri));
  const validator = new Validator({
    service,
    states,
    open: (uri) => documents.get(uri),
    loadFiles,
    publish: (uri, version, diagnostics) => connection.sendDiagnostics({ uri, version, diagnostics }),
  });
  const debouncer = new Debouncer(
    (uri) => validator.validate(uri),
    (uri, e) => connection.console.error(`validation of ${uri} failed: ${(e as Error).stack ?? e}`),
    VALIDATION_QUIET_MS,
  );
  const watchers = new DirWatchers((dir, name) => {
    if (!name) return revalidateAll();
    for (const [uri, st] of states.entries()) {
      const f = st.files;
      if (!f) continue;
      for (const p of [f.npzPath, f.reportPath, ...(f.side ?? []).map((s) => s.path)]) {
        if (p && dirname(p) === dir && basename(p) === name) {
          files.invalidate(p);
          debouncer.schedule(uri);
        }
      }
    }
  });

  /** Loads the NPZ and report beside the manifest (cached by size and mtime) and watches their folders. */
  // A document's file load under way (validation starts one after each edit): service.loadFiles sets st.files
  // before the NPZ and report are read, so a feature that needs them awaits this rather than testing st.files.
  const loading = new WeakMap<DocState, Promise<void>>();
  function loadFiles(st: DocState): Promise<void> {
    const run = (async () => {
      for (const p of await service.loadFiles(st)) watchers.watch(dirname(p));
    })();
    loading.set(st, run);
    run
      .finally(() => {
        if (loading.get(st) === run) loading.delete(st);
      })
      .catch(() => {});
    return run;
  }

  function revalidateAll() {
    for (const uri of states.uris()) debouncer.schedule(uri);
  }

  /** The document's state with its files loaded (for the features that show them). */
  async function withFiles(uri: string): Promise<DocState | undefined> {
    const st = await states.ready(uri);
    if (st) await (loading.get(st) ?? (st.files ? undefined : loadFiles(st)));
    return st;
  }

  connection.onInitialize(
    (): InitializeResult => ({
      capabilities: {
        textDocumentSync: TextDocumentSyncKind.Incremental,
        hoverProvider: true,
        completionProvider: { triggerCharacters: ['"', ':'] },
        documentSymbolProvider: true,
        foldingRangeProvider: true,
        codeLensProvider: { resolveProvider: false },
        codeActionProvider: { codeActionKinds: ['quickfix'] },
        definitionProvider: true,
      },
      serverInfo: { name: 'apl-manifest-language-server' },
    }),
  );

  type DocEvent = TextDocumentChangeEvent<TextDocument>;
  documents.onDidOpen((e: DocEvent) => debouncer.schedule(e.document.uri));
  documents.onDidChangeContent((e: DocEvent) => debouncer.schedule(e.document.uri));
  documents.onDidClose((e: DocEvent) => {
    states.delete(e.document.uri);
    debouncer.cancel(e.document.uri);
    validator.cancel(e.document.uri);
    void connection.sendDiagnostics({ uri: e.document.uri, diagnostics: [] });
  });
  connection.onDidChangeWatchedFiles((e: DidChangeWatchedFilesParams) => {
    for (const c of e.changes) {
      const p = uriToPath(c.uri);
      if (p) files.invalidate(p);
    }
    revalidateAll();
  });

  // Each request answers from the parse of the version current when it arrived (parsed in slices if not yet).
  connection.onHover(async (p) => {
    const st = await states.ready(p.textDocument.uri);
    return st ? service.doHover(st, p.position) : null;
  });
  connection.onCompletion(async (p) => {
    const st = await states.ready(p.textDocument.uri);
    return st ? service.doComplete(st, p.position) : [];
  });
  connection.onDocumentSymbol(async (p) => {
    const st = await states.ready(p.textDocument.uri);
    return st ? service.findDocumentSymbols(st) : [];
  });
  connection.onFoldingRanges(async (p) => {
    const st = await states.ready(p.textDocument.uri);
    return st ? service.getFoldingRanges(st) : [];
  });
  connection.onCodeLens(async (p) => {
    const st = await withFiles(p.textDocument.uri);
    return st ? service.getCodeLenses(st) : [];
  });
  connection.onCodeAction(async (p) => {
    const st = await states.ready(p.textDocument.uri);
    return st ? service.getCodeActions(st, p.textDocument.uri, p.context.diagnostics) : [];
  });
  connection.onDefinition(async (p) => {
    const st = await withFiles(p.textDocument.uri); // the NPZ and report exist only once their files are read
    return st ? service.findDefinition(st, p.position) : null;
  });
  onLspRequest(connection, LspRequests.manifestSummary, async (p) => {
    const st = await withFiles(p.uri);
    return st ? service.getSummary(st) : null;
  });
  connection.onShutdown(() => watchers.close());

  documents.listen(connection);
  connection.listen();
  return connection;
}

// Started directly (dist/server.js, or server.ts under tsx); the CLI's `lsp` command calls startServer itself.
if (require.main === module && /^server\.[cm]?[jt]s$/.test(basename(process.argv[1] ?? ''))) startServer();
