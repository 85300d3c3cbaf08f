// The extension-host side of both webviews' message protocols, without vscode: the custom editor and the report
// panel (client/src/webviews/) and the Chromium render tests drive exactly this code.
import { readdir, readFile, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { manifestMatchesReport } from '../convert/names';
import { oneLine } from '../formats/errors';
import type { HostToInspector, HostToReport, InspectorToHost } from '../protocol';
import type { InspectorSession } from './session';

const errorMessage = (e: unknown) => (e instanceof Error ? e.message : String(e));

/**
 * Answers an inspector webview's messages from an open session. Every request gets exactly one reply (an error
 * reply when it fails), so the webview never waits forever.
 */
export function inspectorHost(session: InspectorSession, post: (m: HostToInspector) => unknown) {
  return async (msg: InspectorToHost): Promise<void> => {
    switch (msg?.type) {
      case 'ready':
        try {
          post({
            type: 'members',
            file: session.path,
            kind: session.kind,
            fileBytes: session.fileBytes,
            members: await session.members(),
            manifest: session.manifest?.path ?? null,
          });
        } catch (e) {
          post({ type: 'error', message: errorMessage(e) });
        }
        return;
      case 'selectTensor':
        try {
          post({ type: 'tensor', tensor: await session.tensor(msg.name) });
        } catch (e) {
          post({ type: 'error', message: errorMessage(e), name: msg.name });
        }
        return;
      case 'page':
        try {
          const p = await session.page(msg.name, msg.view, msg.row, msg.rowCount, msg.col, msg.colCount);
          post({ type: 'page', requestId: msg.requestId, name: msg.name, view: msg.view, ...p });
        } catch (e) {
          post({ type: 'error', message: errorMessage(e), requestId: msg.requestId, name: msg.name });
        }
        return;
    }
  };
}

/** Report files larger than this are refused (a report is a few hundred bytes per weight). */
export const MAX_REPORT_BYTES = 64 * 1024 * 1024;

/**
 * Reads a report file into the message the report webview shows, with the manifest and archive beside it (the
 * manifest whose metadata.accuracy_report names the report, else the one with the same `<name>_…_q<bits>` stem).
 */
export async function loadReport(path: string): Promise<Extract<HostToReport, { type: 'report' }>> {
  let text: string;
  try {
    const st = await stat(path);
    if (!st.isFile()) throw new Error('is not a file');
    if (st.size > MAX_REPORT_BYTES) throw new Error(`is ${st.size} bytes, more than a report can be`);
    text = await readFile(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new Error(`${path}: ${code === 'ENOENT' ? 'no such file' : errorMessage(e)}`);
  }
  let report: unknown;
  try {
    report = JSON.parse(text);
  } catch (e) {
    throw new Error(oneLine(`${path}: not valid JSON (${errorMessage(e)})`));
  }
  const { manifest, npz } = await besideReport(path);
  const model = report && typeof report === 'object' && 'model' in report ? String(report.model) : basename(path);
  return { type: 'report', report, title: `Accuracy: ${model}`, file: path, manifest, npz };
}

async function besideReport(reportPath: string): Promise<{ manifest: string | null; npz: string | null }> {
  const dir = dirname(reportPath);
  const base = basename(reportPath);
  let names: string[] = [];
  try {
    names = await readdir(dir);
  } catch {
    return { manifest: null, npz: null };
  }
  let fallback: { manifest: string; npz: string | null } | null = null;
  for (const n of names.filter((x) => /manifest.*\.json$/i.test(x))) {
    try {
      const p = join(dir, n);
      if ((await stat(p)).size > MAX_REPORT_BYTES) continue;
      const m = JSON.parse(await readFile(p, 'utf8')) as { metadata?: { npz?: unknown; accuracy_report?: unknown } };
      const npzName = typeof m?.metadata?.npz === 'string' ? join(dir, m.metadata.npz) : null;
      if (m?.metadata?.accuracy_report === base) return { manifest: p, npz: npzName };
      if (!fallback && manifestMatchesReport(n, base)) fallback = { manifest: p, npz: npzName };
    } catch {
      // not a manifest we can read
    }
  }
  return fallback ?? { manifest: null, npz: null };
}
