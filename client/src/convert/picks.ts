// The quick picks of APL: Convert Model…: model (aliases with download sizes, a repo id, a local folder), bits
// (with estimated output sizes) and advanced options (group size, symmetric, backend, output folder). Choices are
// remembered in globalState; the `apl.convert.*` settings give the first defaults.
import { closeSync, openSync, readdirSync, readSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { basename, join } from 'node:path';
import * as vscode from 'vscode';
import { bitWidthCaveat } from '../../../server/src/common/advice';
import { formatBytes } from '../../../server/src/common/format';
import { BIT_WIDTHS, type BitWidth } from '../../../server/src/formats/manifest';
import type { ClientContext } from '../context';
import { backendSetting, convertSettings, explicitConvertSettings } from '../settings';
import { type PickExtras, ui } from '../ui';
import {
  BACKENDS,
  type Backend,
  type ConvertDefaults,
  type ConvertRequest,
  estimateFromTensors,
  estimateOutputBytes,
  expandFolder,
  mergeDefaults,
  paramsFromDownloadBytes,
  requestFields,
  requestFormat,
  settingsFormat,
  type TensorInfoLike,
  tolerancesOf,
} from './options';

const STATE_KEY = 'apl.convert.last';
const TOLERANCE_SPEC = /^\s*[1248]\s*=\s*[0-9.]+%?\s*(,\s*[1248]\s*=\s*[0-9.]+%?\s*)*$/;
const REPO_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,95}\/[A-Za-z0-9][A-Za-z0-9_.-]{0,95}$/;

interface AliasLike {
  alias: string;
  repo: string;
  label: string;
  downloadBytes: number;
  gated: boolean;
}

async function loadAliases(): Promise<readonly AliasLike[]> {
  const m = await import('../../../server/src/convert/aliases');
  return m.MODEL_ALIASES;
}

/** Settings first, then what the user chose last time. */
export function currentDefaults(ctx: ClientContext): ConvertDefaults {
  const c = convertSettings();
  const explicit = explicitConvertSettings();
  const fromSettings: ConvertDefaults = {
    bits: c.bits,
    groupSize: c.groupSize,
    symmetric: c.symmetric,
    format: settingsFormat(c.format, explicit),
    backend: backendSetting(),
    outDir: expandFolder(c.outputFolder, vscode.workspace.workspaceFolders?.[0]?.uri.fsPath, homedir()),
    mode: c.mode,
    embeddingsBits: c.embeddingsBits,
    tolerance: c.tolerance,
    eval: c.eval,
    evalText: c.evalText
      ? expandFolder(c.evalText, vscode.workspace.workspaceFolders?.[0]?.uri.fsPath, homedir())
      : undefined,
  };
  const last = ctx.extension.globalState.get<Partial<ConvertDefaults>>(STATE_KEY) ?? {};
  return mergeDefaults(fromSettings, explicit, last);
}

export async function remember(ctx: ClientContext, r: ConvertRequest): Promise<void> {
  const d: ConvertDefaults = {
    bits: r.bits,
    groupSize: r.groupSize,
    symmetric: r.symmetric,
    format: r.format,
    backend: r.backend,
    outDir: r.outDir,
    lastModel: r.model,
    mode: r.mode,
    embeddingsBits: r.embeddingsBits,
    tolerance: r.tolerance,
    eval: r.eval,
  };
  await ctx.extension.globalState.update(STATE_KEY, d);
}

/** The tensors named by a folder's *.safetensors headers (undefined when one is unreadable): the size estimate's input. */
export function localTensors(dir: string): TensorInfoLike[] | undefined {
  try {
    const out: TensorInfoLike[] = [];
    for (const f of readdirSync(dir).filter((n) => n.endsWith('.safetensors'))) {
      const fd = openSync(join(dir, f), 'r');
      try {
        const len = Buffer.alloc(8);
        readSync(fd, len, 0, 8, 0);
        const n = Number(len.readBigUInt64LE(0));
        if (n > 100 << 20) return undefined;
        const head = Buffer.alloc(n);
        readSync(fd, head, 0, n, 8);
        const h = JSON.parse(head.toString('utf8')) as Record<string, { dtype: string; shape: number[] }>;
        for (const [name, t] of Object.entries(h)) if (name !== '__metadata__') out.push({ name, ...t });
      } finally {
        closeSync(fd);
      }
    }
    return out.length ? out : undefined;
  } catch {
    return undefined;
  }
}

/** Sum of the *.safetensors sizes in a folder (0 when unreadable): the parameter estimate of a local model. */
function localBytes(dir: string): number {
  try {
    return readdirSync(dir)
      .filter((f) => f.endsWith('.safetensors'))
      .reduce((s, f) => s + statSync(join(dir, f)).size, 0);
  } catch {
    return 0;
  }
}

interface PickedModel {
  model: string;
  bytes?: number;
  /** A local folder's tensors: the size estimate reads their shapes. */
  tensors?: TensorInfoLike[];
}

type ModelItem = vscode.QuickPickItem & {
  pick: 'alias' | 'repo' | 'folder' | 'last' | 'path' | 'repo-typed';
  value?: string;
  bytes?: number;
};

/** A folder holding a checkpoint: config.json and at least one *.safetensors. */
export function isModelFolder(dir: string): boolean {
  try {
    const names = readdirSync(dir);
    return names.includes('config.json') && names.some((n) => n.endsWith('.safetensors'));
  } catch {
    return false;
  }
}

/** Model folders in the workspace (the folders themselves and two levels below; node_modules and dot folders skipped). */
export function workspaceModelFolders(roots: readonly string[], limit = 20): string[] {
  const out: string[] = [];
  const walk = (dir: string, depth: number) => {
    if (out.length >= limit) return;
    if (isModelFolder(dir)) out.push(dir);
    if (depth === 0) return;
    let subs: string[] = [];
    try {
      subs = readdirSync(dir, { withFileTypes: true })
        .filter((e) => e.isDirectory() && !e.name.startsWith('.') && e.name !== 'node_modules')
        .map((e) => join(dir, e.name));
    } catch {
      return;
    }
    for (const d of subs.sort()) walk(d, depth - 1);
  };
  for (const r of roots) walk(r, 2);
  return out;
}

/** Items for what the user typed: an existing folder path, or a Hub repo id. */
function typedItems(v: string): ModelItem[] {
  const path = v === '~' || v.startsWith('~/') ? homedir() + v.slice(1) : v;
  if (/^([/.~]|[A-Za-z]:\\)/.test(v)) {
    return isModelFolder(path)
      ? [{ label: `$(folder) ${path}`, description: 'convert this folder', pick: 'path', value: path }]
      : [
          {
            label: `$(warning) ${path}`,
            description: 'not a model folder (config.json and *.safetensors)',
            pick: 'path',
          },
        ];
  }
  return REPO_ID.test(v)
    ? [{ label: `$(repo) ${v}`, description: 'Hugging Face repo', pick: 'repo-typed', value: v }]
    : [];
}

async function pickModel(d: ConvertDefaults): Promise<PickedModel | undefined> {
  const aliases = await loadAliases();
  const items: ModelItem[] = [];
  const roots = (vscode.workspace.workspaceFolders ?? []).map((f) => f.uri.fsPath);
  const found = workspaceModelFolders(roots).filter((f) => f !== d.lastModel);
  if (d.lastModel && !aliases.some((a) => a.alias === d.lastModel)) {
    items.push({ label: `$(history) ${d.lastModel}`, description: 'last converted', pick: 'last', value: d.lastModel });
  }
  for (const f of found) {
    items.push({
      label: `$(folder) ${basename(f)}`,
      description: f,
      detail: 'model folder in the workspace',
      pick: 'path',
      value: f,
    });
  }
  items.push({
    label: '$(folder-opened) Local folder…',
    description: 'a folder with config.json and safetensors (or type its path)',
    pick: 'folder',
  });
  items.push({ label: '$(repo) Hugging Face repo id…', description: 'owner/name (or type it)', pick: 'repo' });
  items.push({ label: 'download', kind: vscode.QuickPickItemKind.Separator, pick: 'repo' });
  for (const a of aliases) {
    items.push({
      label: a.label,
      description: `${a.alias} · ${a.repo}`,
      detail: `≈ ${formatBytes(a.downloadBytes)} download${a.gated ? ' · gated: needs a Hugging Face token' : ''}`,
      pick: 'alias',
      value: a.alias,
      bytes: a.downloadBytes,
    });
  }
  const chosen = await ui.showQuickPick(items, {
    title: 'APL: Convert Model (1/3): model',
    placeHolder: 'A model folder, a path, a Hub repo id (owner/name) or a model to download',
    matchOnDescription: true,
    matchOnDetail: true,
    ignoreFocusOut: true,
    typed: typedItems,
  } as vscode.QuickPickOptions & PickExtras<ModelItem>);
  if (!chosen) return undefined;
  if (chosen.pick === 'path') {
    if (!chosen.value) return undefined;
    return { model: chosen.value, bytes: localBytes(chosen.value) || undefined, tensors: localTensors(chosen.value) };
  }
  if (chosen.pick === 'repo-typed') return { model: chosen.value! };
  if (chosen.pick === 'alias' || chosen.pick === 'last') {
    const local = chosen.pick === 'last' && isModelFolder(chosen.value!);
    return { model: chosen.value!, bytes: chosen.bytes, tensors: local ? localTensors(chosen.value!) : undefined };
  }
  if (chosen.pick === 'repo') {
    const repo = await ui.showInputBox({
      title: 'APL: Convert Model: Hugging Face repo id',
      placeHolder: 'TinyLlama/TinyLlama-1.1B-Chat-v1.0',
      ignoreFocusOut: true,
      validateInput: (v) => (REPO_ID.test(v.trim()) ? undefined : 'Expected owner/name'),
    });
    return repo ? { model: repo.trim() } : undefined;
  }
  const folder = await ui.showOpenDialog({
    title: 'APL: Convert Model: the model folder (config.json and *.safetensors)',
    canSelectFolders: true,
    canSelectFiles: false,
    canSelectMany: false,
    openLabel: 'Convert this model',
  });
  if (!folder?.[0]) return undefined;
  const dir = folder[0].fsPath;
  return { model: dir, bytes: localBytes(dir) || undefined, tensors: localTensors(dir) };
}

async function pickBits(d: ConvertDefaults, m: PickedModel): Promise<BitWidth | undefined> {
  const params = m.bytes ? paramsFromDownloadBytes(m.bytes) : undefined;
  const estimate = (bits: BitWidth) => {
    const o = { bits, groupSize: d.groupSize, symmetric: d.symmetric, embeddingsBits: d.embeddingsBits };
    const b = m.tensors ? estimateFromTensors(m.tensors, o) : undefined;
    return b ?? (params ? estimateOutputBytes(params, bits, d.groupSize) : undefined);
  };
  const about: Record<BitWidth, string> = {
    1: 'sign × scale: smallest, large error',
    2: 'very small, noticeable error',
    4: 'the usual choice',
    8: 'near lossless',
  };
  const items = BIT_WIDTHS.map((bits) => ({
    label: `${bits}-bit`,
    description: estimate(bits) !== undefined ? `≈ ${formatBytes(estimate(bits) ?? null)}` : undefined,
    detail: [about[bits], bitWidthCaveat(bits, tolerancesOf(d.tolerance)[bits])]
      .filter(Boolean)
      .map((t, i) => (i ? `$(warning) ${t}` : t))
      .join(' · '),
    bits,
  }));
  // In order 1, 2, 4, 8; Enter picks the default.
  const chosen = await ui.showQuickPick(items, {
    title: 'APL: Convert Model (2/3): bits per weight',
    placeHolder:
      params || m.tensors
        ? `Estimated output sizes (embeddings and output head at ${d.embeddingsBits ?? 8} bits)`
        : 'Bits per weight',
    ignoreFocusOut: true,
    active: items.find((i) => i.bits === d.bits),
  } as vscode.QuickPickOptions & PickExtras<(typeof items)[number]>);
  return chosen?.bits;
}

/** The last step: convert now, or change the advanced options first (loops until Convert or Escape). */
async function pickAdvanced(d: ConvertDefaults, model: string): Promise<ConvertDefaults | undefined> {
  let cur = { ...d };
  for (;;) {
    const kq = cur.format === 'kquant' && (cur.bits === 2 || cur.bits === 4);
    const layout = `group ${cur.groupSize === 'row' ? 'per row' : cur.groupSize} · ${cur.symmetric ? 'symmetric' : 'asymmetric'}`;
    const summary = `${kq ? 'kquant (two-level scales)' : layout} · ${cur.mode ?? 'optimized'} · embeddings ${cur.embeddingsBits ?? 8}-bit · backend ${cur.backend}${cur.tolerance ? ` · tolerance ${cur.tolerance}` : ''}${cur.eval ? ' · end-to-end check' : ''}`;
    const items: (vscode.QuickPickItem & { key: string })[] = [
      { key: 'go', label: `$(play) Convert ${model} to ${cur.bits}-bit`, detail: `${summary} → ${cur.outDir ?? '?'}` },
      { key: 'group', label: '$(symbol-numeric) Group size…', description: String(cur.groupSize) },
      {
        key: 'sym',
        label: '$(symbol-operator) Symmetric / asymmetric…',
        description: cur.symmetric ? 'symmetric' : 'asymmetric',
      },
      { key: 'format', label: '$(layers) Format…', description: kq ? 'kquant' : 'groupwise' },
      { key: 'mode', label: '$(symbol-method) Rounding mode…', description: cur.mode ?? 'optimized' },
      { key: 'emb', label: '$(symbol-array) Embeddings and head bits…', description: `${cur.embeddingsBits ?? 8}-bit` },
      { key: 'tol', label: '$(law) Tolerance…', description: cur.tolerance || "the guide's" },
      {
        key: 'eval',
        label: '$(beaker) End-to-end check (--eval)',
        description: cur.eval ? `on · ${cur.evalText ?? "the model's heldout.txt"}` : 'off',
        detail: 'After converting, run the quantized and the float model over a text: KLD, same top, perplexity',
      },
      { key: 'backend', label: '$(chip) Backend…', description: cur.backend },
      { key: 'out', label: '$(folder) Output folder…', description: cur.outDir ?? 'not set' },
    ];
    const c = await ui.showQuickPick(items, {
      title: 'APL: Convert Model (3/3): options',
      ignoreFocusOut: true,
    });
    if (!c) return undefined;
    if (c.key === 'go') {
      if (cur.outDir) return cur;
      continue;
    }
    if (c.key === 'group') {
      const g = await ui.showQuickPick(
        ['32', '64', '128', '256', 'row'].map((v) => ({
          label: v,
          description: v === 'row' ? 'one group per row' : undefined,
        })),
        { title: 'Group size (elements sharing a scale and zero point)' },
      );
      if (g) cur = { ...cur, groupSize: g.label === 'row' ? 'row' : Number(g.label) };
    } else if (c.key === 'sym') {
      const s = await ui.showQuickPick(['asymmetric', 'symmetric'], { title: 'Zero point' });
      if (s) cur = { ...cur, symmetric: s === 'symmetric' };
    } else if (c.key === 'format') {
      const items = [
        { label: 'groupwise', description: 'a float16 scale and zero point per group (default)' },
        ...(cur.bits === 2 || cur.bits === 4
          ? [{ label: 'kquant', description: 'two-level scales: integer codes under float16 super-scales' }]
          : []),
      ];
      const f = await ui.showQuickPick(items, { title: 'Quantization format (--format)' });
      if (f) cur = { ...cur, format: f.label === 'kquant' ? 'kquant' : 'groupwise' };
    } else if (c.key === 'mode') {
      const m = await ui.showQuickPick(['optimized', 'minmax'], { title: 'Rounding mode (--mode)' });
      if (m) cur = { ...cur, mode: m === 'minmax' ? 'minmax' : 'optimized' };
    } else if (c.key === 'emb') {
      const e = await ui.showQuickPick(
        BIT_WIDTHS.map((b) => `${b}`),
        { title: 'Bits for the token embeddings and the output head (--embeddings-bits)' },
      );
      if (e) cur = { ...cur, embeddingsBits: Number(e) as BitWidth };
    } else if (c.key === 'tol') {
      const t = await ui.showInputBox({
        title: 'Relative-error tolerance per bit width (--tolerance)',
        value: cur.tolerance ?? '',
        placeHolder: "e.g. 2=0.35 (empty: the guide's 1=0.5,2=0.2,4=0.1,8=0.02)",
        validateInput: (v) =>
          !v.trim() || TOLERANCE_SPEC.test(v) ? undefined : 'Expected BITS=VALUE[,…], e.g. 2=0.35',
      });
      if (t !== undefined) cur = { ...cur, tolerance: t.trim() };
    } else if (c.key === 'eval') {
      cur = { ...cur, eval: !cur.eval };
    } else if (c.key === 'backend') {
      const b = await ui.showQuickPick([...BACKENDS], { title: 'Backend' });
      if (b) cur = { ...cur, backend: b as Backend };
    } else if (c.key === 'out') {
      const f = await ui.showOpenDialog({
        title: 'APL: Convert Model: output folder',
        canSelectFolders: true,
        canSelectFiles: false,
        openLabel: 'Output here',
      });
      if (f?.[0]) cur = { ...cur, outDir: f[0].fsPath };
    }
  }
}

/** Asks everything; undefined when the user escapes. */
export async function pickRequest(ctx: ClientContext): Promise<ConvertRequest | undefined> {
  const d = currentDefaults(ctx);
  const m = await pickModel(d);
  if (!m) return undefined;
  const bits = await pickBits(d, m);
  if (!bits) return undefined;
  const adv = await pickAdvanced({ ...d, bits }, m.model);
  if (!adv?.outDir) return undefined;
  return {
    model: m.model,
    ...requestFields({ ...adv, bits }),
    ...requestFormat(adv.format, bits),
    outDir: adv.outDir,
  };
}
