// Language server for APL manifests: LSP wiring only. Every feature is a pure module in ./manifest; this file keeps
// documents, loads the NPZ and report beside each manifest (re-checked when they change on disk) and answers requests.
// Run as `node dist/server.js --stdio` (or --node-ipc), or `apl-quant lsp --stdio`.
import { type FSWatcher, watch } from 'node:fs';
import { basename, dirname } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import {
  type CodeActionParams,
  type Connection,
  createConnection,
  type Diagnostic,
  type DidChangeWatchedFilesParams,
  type InitializeResult,
  ProposedFeatures,
  type TextDocumentChangeEvent,
  TextDocumentSyncKind,
  TextDocuments,
} from 'vscode-languageserver/node';
import { TextDocument } from 'vscode-languageserver-textdocument';
import { codeActions } from './manifest/code-actions';
import { codeLenses } from './manifest/code-lens';
import { completion } from './manifest/completion';
import { definition } from './manifest/definition';
import { type ManifestDoc, parseManifest } from './manifest/document';
import { FileCache, type ManifestFiles, manifestFiles } from './manifest/files';
import { hover } from './manifest/hover';
import type { NpzState } from './manifest/npz-index';
import type { ReportState } from './manifest/report';
import { summarize } from './manifest/summary';
import { documentSymbols, foldingRanges } from './manifest/symbols';
import { validateDoc } from './manifest/validate';
import { LspMethods, type ManifestSummary, type ManifestSummaryParams } from './protocol';

interface DocState {
  version: number;
  doc: ManifestDoc;
  files?: ManifestFiles;
  npz?: NpzState;
  report?: ReportState;
  diagnostics?: Diagnostic[];
}

function uriToPath(uri: string): string | undefined {
  if (!uri.startsWith('file:')) return undefined;
  try {
    return fileURLToPath(uri);
  } catch {
    return undefined;
  }
}

const exists = (s: NpzState | ReportState | undefined) => !!s && !('problem' in s && s.problem === 'missing');

/** Starts the manifest language server on a connection (default: from process.argv: --stdio, --node-ipc, ...). */
export function startServer(connection: Connection = createConnection(ProposedFeatures.all)): Connection {
  const documents: TextDocuments<TextDocument> = new TextDocuments(TextDocument);
  const states = new Map<string, DocState>();
  const files = new FileCache();
  const watchers = new Map<string, FSWatcher>();
  const pending = new Set<string>();
  let flushScheduled = false;

  /** Parsed state of the document's current version (parsing once per version). */
  function parsed(uri: string): DocState | undefined {
    const td = documents.get(uri);
    if (!td) return undefined;
    const st = states.get(uri);
    if (st && st.version === td.version) return st;
    const next: DocState = {
      version: td.version,
      doc: parseManifest(td.getText()),
      files: st?.files,
      npz: st?.npz,
      report: st?.report,
    };
    states.set(uri, next);
    return next;
  }

  function watchDir(dir: string) {
    if (watchers.has(dir) || watchers.size >= 256) return;
    try {
      const w = watch(dir, { persistent: false }, (_event, name) => {
        if (!name) return revalidateAll();
        for (const [uri, st] of states) {
          const f = st.files;
          if (!f) continue;
          for (const p of [f.npzPath, f.reportPath]) {
            if (p && dirname(p) === dir && basename(p) === String(name)) {
              files.invalidate(p);
              schedule(uri);
            }
          }
        }
      });
      w.on('error', () => {
        w.close();
        watchers.delete(dir);
      });
      watchers.set(dir, w);
    } catch {
      // A folder that cannot be watched is still re-checked (by stat) on every edit.
    }
  }

  /** Loads the NPZ and report beside the manifest (cached by size and mtime). */
  async function loadFiles(uri: string, st: DocState): Promise<void> {
    const path = uriToPath(uri);
    if (!path) return;
    const f = manifestFiles(st.doc, path);
    st.files = f;
    const [npz, report] = await Promise.all([
      f.npzPath ? files.getNpz(f.npzPath) : undefined,
      f.reportPath ? files.getReport(f.reportPath, f.reportNamed) : undefined,
    ]);
    st.npz = npz;
    st.report = report;
    for (const p of [f.npzPath, f.reportPath]) if (p) watchDir(dirname(p));
  }

  async function validate(uri: string): Promise<void> {
    for (let attempt = 0; attempt < 3; attempt++) {
      const st = parsed(uri);
      if (!st) return;
      await loadFiles(uri, st);
      const now = documents.get(uri);
      if (!now || now.version !== st.version) continue; // edited meanwhile: take the newer text
      st.diagnostics = validateDoc(st.doc, { manifestPath: uriToPath(uri), npz: st.npz, report: st.report });
      await connection.sendDiagnostics({ uri, version: st.version, diagnostics: st.diagnostics });
      // Build the tree (offsets) once the user pauses, so the next hover or completion finds it ready.
      setTimeout(() => {
        if (states.get(uri) === st && documents.get(uri)?.version === st.version) void st.doc.root;
      }, 250).unref();
      return;
    }
    schedule(uri);
  }

  function schedule(uri: string) {
    pending.add(uri);
    if (flushScheduled) return;
    flushScheduled = true;
    setImmediate(async () => {
      flushScheduled = false;
      const uris = [...pending];
      pending.clear();
      for (const u of uris) {
        try {
          await validate(u);
        } catch (e) {
          connection.console.error(`validation of ${u} failed: ${(e as Error).stack ?? e}`);
        }
      }
    });
  }

  function revalidateAll() {
    for (const uri of states.keys()) schedule(uri);
  }

  function summary(_uri: string, st: DocState): ManifestSummary {
    return summarize(st.doc, {
      npz: st.npz,
      report: st.report,
      npzPath: st.files?.npzPath ?? null,
      reportPath: exists(st.report) ? (st.files?.reportPath ?? null) : null,
    });
  }

  function fileUris(st: DocState) {
    const npzUri = st.files?.npzPath && exists(st.npz) ? pathToFileURL(st.files.npzPath).href : undefined;
    const reportUri = st.files?.reportPath && exists(st.report) ? pathToFileURL(st.files.reportPath).href : undefined;
    return { npzUri, reportUri };
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
  documents.onDidOpen((e: DocEvent) => schedule(e.document.uri));
  documents.onDidChangeContent((e: DocEvent) => schedule(e.document.uri));
  documents.onDidClose((e: DocEvent) => {
    states.delete(e.document.uri);
    pending.delete(e.document.uri);
    void connection.sendDiagnostics({ uri: e.document.uri, diagnostics: [] });
  });
  connection.onDidChangeWatchedFiles((e: DidChangeWatchedFilesParams) => {
    for (const c of e.changes) {
      const p = uriToPath(c.uri);
      if (p) files.invalidate(p);
    }
    revalidateAll();
  });

  connection.onHover((p) => {
    const st = parsed(p.textDocument.uri);
    if (!st) return null;
    return hover(st.doc, st.doc.lines.offsetAt(p.position), { npz: st.npz, report: st.report });
  });
  connection.onCompletion((p) => {
    const st = parsed(p.textDocument.uri);
    if (!st) return [];
    return completion(st.doc, st.doc.lines.offsetAt(p.position), { npz: st.npz });
  });
  connection.onDocumentSymbol((p) => {
    const st = parsed(p.textDocument.uri);
    return st ? documentSymbols(st.doc) : [];
  });
  connection.onFoldingRanges((p) => {
    const st = parsed(p.textDocument.uri);
    return st ? foldingRanges(st.doc) : [];
  });
  connection.onCodeLens(async (p) => {
    const st = parsed(p.textDocument.uri);
    if (!st) return [];
    if (!st.files) await loadFiles(p.textDocument.uri, st);
    return codeLenses(summary(p.textDocument.uri, st), fileUris(st));
  });
  connection.onCodeAction((p: CodeActionParams) => {
    const st = parsed(p.textDocument.uri);
    if (!st) return [];
    // Diagnostics from the client carry our `data`; when a client drops it, use ours at the same range and code.
    const ours = st.diagnostics ?? [];
    const diags = p.context.diagnostics.map((d) => {
      if (d.data !== undefined) return d;
      const same = ours.find(
        (o) =>
          o.code === d.code &&
          o.range.start.line === d.range.start.line &&
          o.range.start.character === d.range.start.character,
      );
      return same ?? d;
    });
    return codeActions(st.doc, diags, { uri: p.textDocument.uri, npz: st.npz });
  });
  connection.onDefinition((p) => {
    const st = parsed(p.textDocument.uri);
    if (!st) return null;
    return definition(st.doc, st.doc.lines.offsetAt(p.position), fileUris(st));
  });
  connection.onRequest(
    LspMethods.manifestSummary,
    async (p: ManifestSummaryParams): Promise<ManifestSummary | null> => {
      const st = parsed(p.uri);
      if (!st) return null;
      if (!st.files) await loadFiles(p.uri, st);
      return summary(p.uri, st);
    },
  );
  connection.onShutdown(() => {
    for (const w of watchers.values()) w.close();
    watchers.clear();
  });

  documents.listen(connection);
  connection.listen();
  return connection;
}

// Started directly (dist/server.js, or server.ts under tsx); the CLI's `lsp` command calls startServer itself.
if (require.main === module && /^server\.[cm]?[jt]s$/.test(basename(process.argv[1] ?? ''))) startServer();
