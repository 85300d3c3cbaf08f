// The extension-host side of both webviews' message protocols (the inspector's: members, tensors, slices, pages,
// comparisons), without vscode: the custom editor and the report
// panel (client/src/webviews/) and the Chromium render tests drive exactly this code.
import { readdir, readFile, stat } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { manifestMatchesReport } from '../convert/names';
import { oneLine } from '../formats/errors';
import { readRegularFile } from '../formats/source';
import type { HostToInspector, HostToReport, InspectorOperand, InspectorToHost } from '../protocol';
import { compareTensors, diffPage, sameTensorIn } from './compare';
import { InspectorSession } from './session';
import { jsonValue } from './values';

const errorMessage = (e: unknown) => (e instanceof Error ? e.message : String(e));

export interface InspectorHostOptions {
  /** Asks the user for another file to compare with (the editor shows a dialog); undefined when cancelled. */
  pickFile?: () => Promise<string | undefined>;
  /** Opens another file for comparisons (default InspectorSession.open). */
  open?: (path: string) => Promise<InspectorSession>;
}

/**
 * Answers an inspector webview's messages from an open session. Every request gets exactly one reply (an error
 * reply when it fails), so the webview never waits forever. Files opened for comparisons stay open until
 * `dispose` (or until the session is replaced after a reload: `setSession`).
 */
export function inspectorHost(
  first: InspectorSession,
  post: (m: HostToInspector) => unknown,
  opts: InspectorHostOptions = {},
) {
  let session = first;
  const others = new Map<string, Promise<InspectorSession>>();
  const openOther = (file: string) => {
    if (resolve(file) === resolve(session.path)) return Promise.resolve(session);
    let s = others.get(file);
    if (!s) {
      s = (opts.open ?? InspectorSession.open)(file);
      others.set(file, s);
      s.catch(() => others.delete(file));
    }
    return s;
  };
  const operand = async (o: InspectorOperand) => (o.file ? openOther(o.file) : session);
  const handle = async (msg: InspectorToHost): Promise<void> => {
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
      case 'slice':
        try {
          post({ type: 'slice', name: msg.name, slice: msg.slice, ...(await session.slice(msg.name, msg.slice)) });
        } catch (e) {
          post({ type: 'error', message: errorMessage(e), name: msg.name, what: 'slice' });
        }
        return;
      case 'compare':
        try {
          const other = await operand(msg.b);
          post({
            type: 'comparison',
            comparison: await compareTensors(session, msg.a, other, msg.b.name, { b: msg.b.file }),
          });
        } catch (e) {
          post({ type: 'error', message: oneLine(errorMessage(e)), name: msg.a, what: 'compare' });
        }
        return;
      case 'pickCompareFile': {
        const file = await opts.pickFile?.();
        if (!file) return;
        try {
          const other = await openOther(file);
          const b = sameTensorIn(session, msg.name, other);
          if (!b)
            throw new Error(`${basename(file)} has no tensor named ${msg.name} (nor its source or quantized form)`);
          post({ type: 'comparison', comparison: await compareTensors(session, msg.name, other, b, { b: file }) });
        } catch (e) {
          post({ type: 'error', message: oneLine(errorMessage(e)), name: msg.name, what: 'compare' });
        }
        return;
      }
      case 'page':
        try {
          let p: { row: number; col: number; rowCount: number; colCount: number; values: (number | string)[] };
          if (msg.view === 'diff') {
            if (!msg.compare) throw new Error('a diff page needs the tensor to compare with');
            const d = await diffPage(
              session,
              msg.name,
              await operand(msg.compare),
              msg.compare.name,
              msg.row,
              msg.rowCount,
              msg.col,
              msg.colCount,
            );
            p = { ...d, values: Array.from(d.values, jsonValue) };
          } else {
            p = await session.page(msg.name, msg.view, msg.row, msg.rowCount, msg.col, msg.colCount, msg.slice);
          }
          post({ type: 'page', requestId: msg.requestId, name: msg.name, view: msg.view, ...p });
        } catch (e) {
          post({ type: 'error', message: errorMessage(e), requestId: msg.requestId, name: msg.name });
        }
        return;
    }
  };
  return Object.assign(handle, {
    /** Replaces the session (the file changed on disk and was reopened); the webview is told to reload. */
    setSession(next: InspectorSession) {
      session = next;
    },
    async dispose() {
      const all = [...others.values()];
      others.clear();
      await Promise.all(
        all.map((p) =>
          p.then(
            (s) => s.close(),
            () => {},
          ),
        ),
      );
    },
  });
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
    text = (await readRegularFile(path, MAX_REPORT_BYTES)).toString('utf8');
  } catch (e) {
    throw new Error(errorMessage(e));
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
