// Checks across the manifest and the NPZ it describes, beyond what the schema can say: members exist and agree in
// shape and dtype with shape / bit_width / group size; bit_width equals quantization.bits; quantization fields agree;
// no duplicate names or members; the model block agrees with the weights; checksums match the NPZ; the tokenizer
// and configs beside the manifest are readable and agree with the model's vocabulary.
import { type Diagnostic, DiagnosticSeverity } from 'vscode-languageserver-types';
import { groupsPerRow, isBitWidth, matrixView, packedRowBytes } from '../formats/manifest';
import { DiagnosticCodes } from './codes';
import { diag, isObject, type JsonPath, keyAt, layerOf, type ManifestDoc, nodeAt } from './document';
import { isSideProblem, type SideState } from './files';
import { kquantEntryProblems, kquantMemberWant } from './kquant-checks';
import { isNpzProblem, lookupMember, memberKey, type NpzState } from './npz-index';
import { isReportProblem, type ReportState } from './report';
import { drain, type Steps } from './steps';

const { Error: ERROR, Warning: WARNING, Information: INFO } = DiagnosticSeverity;

export const MEMBER_FIELDS = ['q', 'q_scales', 'q_zero_point', 'q_codes', 'q_d', 'q_dmin'] as const;
export type MemberField = (typeof MEMBER_FIELDS)[number];

/** Data of an apl.member-missing diagnostic. */
export interface MemberMissingData {
  kind: 'member';
  weight: number;
  field: MemberField;
  member: string;
  /** NPZ members no weight refers to (a renamed member is among them): the quick fix offers them too. */
  unreferenced?: string[];
}
/** Data of an apl.bits-mismatch diagnostic. */
export interface BitsMismatchData {
  kind: 'bits';
  weight: number;
  bitWidth: number;
  bits: number;
}

const FLOAT_DTYPES = new Set(['float16', 'float32', 'float64', 'bfloat16']);

function isShape(v: unknown): v is number[] {
  return Array.isArray(v) && v.every((x) => typeof x === 'number' && Number.isInteger(x) && x >= 0);
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

const shapeStr = (s: readonly number[]) => `[${s.join(', ')}]`;

/** Model fields implied by weight names: [pattern, axis, model key]. */
const MODEL_RULES: [RegExp, number, 'hidden_dim' | 'vocab_size' | 'intermediate_size', number?][] = [
  [/(?:embed_tokens|wte|word_embeddings|lm_head)\.weight$/, 1, 'hidden_dim', 2],
  [/(?:embed_tokens|wte|word_embeddings|lm_head)\.weight$/, 0, 'vocab_size', 2],
  [/(?:q_proj|k_proj|v_proj|gate_proj|up_proj)\.weight$/, 1, 'hidden_dim', 2],
  [/o_proj\.weight$/, 0, 'hidden_dim', 2],
  [/down_proj\.weight$/, 0, 'hidden_dim', 2],
  [/down_proj\.weight$/, 1, 'intermediate_size', 2],
  [/(?:gate_proj|up_proj)\.weight$/, 0, 'intermediate_size', 2],
  [/(?:input_layernorm|post_attention_layernorm|(?:^|\.)norm)\.weight$/, 0, 'hidden_dim', 1],
];

export interface CheckOptions {
  npz?: NpzState;
  report?: ReportState;
  side?: SideState[];
}

/** Cross-checks of a parsed manifest. `doc.value` must be the parsed object. */
export function crossCheck(doc: ManifestDoc, opts: CheckOptions): Diagnostic[] {
  return drain(crossCheckSteps(doc, opts));
}

/** crossCheck as steps: one per weight, one per problem placed. */
export function* crossCheckSteps(doc: ManifestDoc, opts: CheckOptions): Steps<Diagnostic[]> {
  const root = doc.value;
  if (!isObject(root)) return [];
  // Problems are collected by JSON path and placed at the end: the tree (offsets) is only built when there are any.
  const found: {
    path: JsonPath;
    fallback: JsonPath;
    key: boolean;
    sev: 1 | 2 | 3;
    code: string;
    msg: string;
    data?: unknown;
  }[] = [];
  const at = (path: JsonPath, fallback: JsonPath, sev: 1 | 2 | 3, code: string, msg: string, data?: unknown) =>
    found.push({ path, fallback, key: false, sev, code, msg, data });
  const atKey = (path: JsonPath, fallback: JsonPath, sev: 1 | 2 | 3, code: string, msg: string, data?: unknown) =>
    found.push({ path, fallback, key: true, sev, code, msg, data });
  const meta = isObject(root.metadata) ? root.metadata : undefined;
  const npzPath: JsonPath = meta && 'npz' in meta ? ['metadata', 'npz'] : [];
  const npz = opts.npz;
  const index = npz && !isNpzProblem(npz) ? npz : undefined;

  if (isNpzProblem(npz)) {
    const code = npz.problem === 'missing' ? DiagnosticCodes.npzMissing : DiagnosticCodes.npzUnreadable;
    at(npzPath, ['metadata'], ERROR, code, npz.message);
  }
  if (isReportProblem(opts.report))
    at(['metadata', 'accuracy_report'], ['metadata'], WARNING, DiagnosticCodes.reportMissing, opts.report.message);
  // The files `apl-quant run` reads: it refuses each problem found here.
  const vocab = isObject(root.model) ? root.model.vocab_size : undefined;
  for (const s of opts.side ?? []) {
    const where: JsonPath = ['metadata', s.key];
    if (isSideProblem(s)) at(where, ['metadata'], ERROR, DiagnosticCodes.sideFile, s.message);
    else if (s.ids !== undefined && typeof vocab === 'number' && s.ids > vocab) {
      at(
        where,
        ['metadata'],
        ERROR,
        DiagnosticCodes.sideFile,
        `${s.file}: the tokenizer defines ${s.ids} ids but model.vocab_size is ${vocab}: apl-quant run refuses it`,
      );
    }
  }

  const weights = Array.isArray(root.weights) ? root.weights : [];
  const names = new Map<string, number>();
  const memberUse = new Map<string, number>();
  const missingData: MemberMissingData[] = [];
  const layers = new Map<number, number>(); // layer → first weight index
  const modelSeen = new Set<string>();
  const model = isObject(root.model) ? root.model : undefined;
  let qProjRows: number | undefined;
  let kProjRows: number | undefined;
  let kProjWeight = -1;

  for (let i = 0; i < weights.length; i++) {
    yield;
    const w = weights[i];
    if (!isObject(w)) continue;
    const wn: JsonPath = ['weights', i];
    const f = (...rest: (string | number)[]): JsonPath => [...wn, ...rest];
    const name = typeof w.name === 'string' ? w.name : undefined;
    const wLabel = name ?? `weights[${i}]`;

    // Duplicate names.
    if (name !== undefined) {
      const first = names.get(name);
      if (first !== undefined) {
        at(
          f('name'),
          wn,
          ERROR,
          DiagnosticCodes.duplicateName,
          `Duplicate weight name "${name}" (also weights[${first}])`,
        );
      } else names.set(name, i);
    }

    const shape = isShape(w.shape) ? w.shape : undefined;
    const q = isObject(w.quantization) ? w.quantization : undefined;
    const qNode = f('quantization');
    const type = q?.type;
    const bits = typeof q?.bits === 'number' ? q.bits : undefined;
    const bitWidth = typeof w.bit_width === 'number' ? w.bit_width : undefined;

    // bit_width vs quantization.bits.
    if (bits !== undefined && bitWidth !== undefined && bits !== bitWidth) {
      const data: BitsMismatchData = { kind: 'bits', weight: i, bitWidth, bits };
      at(
        f('bit_width'),
        wn,
        ERROR,
        DiagnosticCodes.bitsMismatch,
        `bit_width ${bitWidth} differs from quantization.bits ${bits}`,
        data,
      );
    }

    // Quantization fields agree with each other.
    const quantized = type === 'perrow_int' || type === 'groupwise_int';
    const groupSizeNode = f('quantization', 'group_size');
    let groupSize = typeof q?.group_size === 'number' && q.group_size >= 1 ? q.group_size : undefined;
    const { rows, cols } = shape ? matrixView(shape) : { rows: 0, cols: 0 };
    if (q && type === 'none') {
      if (q.method !== undefined && q.method !== 'none')
        at(
          f('quantization', 'method'),
          qNode,
          ERROR,
          DiagnosticCodes.quantizationMismatch,
          'type none needs method "none"',
        );
      if (bits !== undefined && bits !== 16 && bits !== 32)
        at(
          f('quantization', 'bits'),
          qNode,
          ERROR,
          DiagnosticCodes.quantizationMismatch,
          'type none stores floats: bits must be 16 or 32',
        );
      for (const fld of ['q_scales', 'q_zero_point'] as const)
        if (typeof w[fld] === 'string')
          at(f(fld), wn, WARNING, DiagnosticCodes.quantizationMismatch, `${fld} should be null for type none`);
      if (q.group_size !== undefined)
        at(
          groupSizeNode,
          qNode,
          WARNING,
          DiagnosticCodes.quantizationMismatch,
          'group_size is meaningless for type none',
        );
    } else if (q && type === 'kquant') {
      for (const msg of kquantEntryProblems(w, q)) at(qNode, wn, ERROR, DiagnosticCodes.quantizationMismatch, `${msg}`);
    } else if (q && quantized) {
      if (bits !== undefined && !isBitWidth(bits))
        at(
          f('quantization', 'bits'),
          qNode,
          ERROR,
          DiagnosticCodes.quantizationMismatch,
          `${type} needs bits 1, 2, 4 or 8`,
        );
      if (q.method === 'none')
        at(
          f('quantization', 'method'),
          qNode,
          ERROR,
          DiagnosticCodes.quantizationMismatch,
          `method "none" needs type none`,
        );
      if (q.method === 'sign' && bits !== undefined && bits !== 1)
        at(
          f('quantization', 'method'),
          qNode,
          ERROR,
          DiagnosticCodes.quantizationMismatch,
          'method "sign" is the 1-bit scheme',
        );
      for (const fld of ['q_scales', 'q_zero_point'] as const)
        if (w[fld] === null)
          at(f(fld), wn, ERROR, DiagnosticCodes.quantizationMismatch, `${fld} is needed for a quantized weight`);
      if (type === 'groupwise_int' && groupSize === undefined && q.group_size === undefined)
        atKey(f('quantization'), wn, ERROR, DiagnosticCodes.quantizationMismatch, 'groupwise_int needs group_size', {
          kind: 'missing',
          path: f('quantization'),
          property: 'group_size',
        });
      if (type === 'perrow_int') {
        if (groupSize !== undefined && shape && groupSize !== cols)
          at(
            groupSizeNode,
            qNode,
            WARNING,
            DiagnosticCodes.quantizationMismatch,
            `perrow_int has one group per row: group_size should be ${cols}, the row length`,
          );
        if (shape) groupSize = cols;
      }
    }

    // Layers.
    const layer = layerOf(w);
    if (layer !== undefined && !layers.has(layer)) layers.set(layer, i);
    if (typeof w.layer === 'number' && name) {
      const fromName = layerOf({ name });
      if (fromName !== undefined && fromName !== w.layer)
        at(
          f('layer'),
          wn,
          WARNING,
          DiagnosticCodes.modelMismatch,
          `layer ${w.layer} disagrees with the name's layer ${fromName}`,
        );
    }

    // The model block against shapes implied by names.
    if (model && name && shape) {
      for (const [re, axis, key, ndim] of MODEL_RULES) {
        if (modelSeen.has(key) || typeof model[key] !== 'number' || shape.length !== ndim || !re.test(name)) continue;
        if (shape[axis] !== model[key]) {
          modelSeen.add(key);
          at(
            ['model', key],
            ['model'],
            ERROR,
            DiagnosticCodes.modelMismatch,
            `model.${key} is ${model[key]} but ${name} (weights[${i}]) has shape ${shapeStr(shape)}`,
          );
        }
      }
      if (shape.length === 2 && /(?:^|\.)q_proj\.weight$/.test(name) && qProjRows === undefined) qProjRows = shape[0];
      if (shape.length === 2 && /(?:^|\.)k_proj\.weight$/.test(name) && kProjRows === undefined) {
        kProjRows = shape[0];
        kProjWeight = i;
      }
    }

    // Members: duplicates, existence, dtype, shape, checksums.
    for (const fld of MEMBER_FIELDS) {
      const member = w[fld];
      if (typeof member !== 'string' || !member) continue;
      const node = f(fld);
      const key = memberKey(member);
      const firstUse = memberUse.get(key);
      if (firstUse !== undefined && firstUse !== i)
        at(
          node,
          wn,
          WARNING,
          DiagnosticCodes.duplicateMember,
          `Member "${member}" is also used by weights[${firstUse}]`,
        );
      else memberUse.set(key, i);
      if (!index) continue;
      const info = lookupMember(index, member);
      if (!info) {
        const data: MemberMissingData = { kind: 'member', weight: i, field: fld, member };
        missingData.push(data);
        at(node, wn, ERROR, DiagnosticCodes.memberMissing, `The NPZ has no member "${member}"`, data);
        continue;
      }
      if (info.error) {
        at(node, wn, ERROR, DiagnosticCodes.npzUnreadable, `Member "${member}" cannot be read: ${info.error}`);
        continue;
      }
      const checksums = isObject(w.checksums) ? w.checksums : undefined;
      const expectedCrc = checksums?.[fld];
      if (typeof expectedCrc === 'string' && info.crc32 !== undefined) {
        const actual = (info.crc32 >>> 0).toString(16).padStart(8, '0');
        if (actual !== expectedCrc.toLowerCase())
          at(
            node,
            wn,
            ERROR,
            DiagnosticCodes.npzChanged,
            `Member "${member}" changed since the manifest was written (CRC-32 ${actual}, manifest says ${expectedCrc})`,
          );
      }
      if (!shape || !q) continue;
      let wantDtype: string[];
      let wantShapes: number[][];
      if (type === 'none') {
        wantDtype = bits === 16 ? ['float16', 'bfloat16'] : bits === 32 ? ['float32'] : [...FLOAT_DTYPES];
        wantShapes = fld === 'q' ? [shape] : [];
      } else if (quantized && bits !== undefined && isBitWidth(bits)) {
        const lead = shape.slice(0, -1);
        if (fld === 'q') {
          wantDtype = ['uint8'];
          const packed = packedRowBytes(cols, bits);
          wantShapes = [
            [rows, packed],
            [...lead, packed],
          ];
        } else {
          wantDtype = [q.scale_dtype === 'float32' ? 'float32' : 'float16'];
          if (groupSize === undefined) wantShapes = [];
          else {
            const groups = groupsPerRow(cols, groupSize);
            wantShapes = [
              [rows, groups],
              [...lead, groups],
            ];
          }
        }
        if (shape.length === 0) wantShapes.push(fld === 'q' ? [packedRowBytes(1, bits)] : [1]);
      } else if (type === 'kquant') {
        const want = kquantMemberWant(fld, q, shape);
        if (!want) continue;
        wantDtype = want.dtype;
        wantShapes = want.shapes;
      } else continue;
      if (!wantDtype.includes(info.dtype))
        at(
          node,
          wn,
          ERROR,
          DiagnosticCodes.dtypeMismatch,
          `Member "${member}" is ${info.dtype}; ${fld} of ${wLabel} should be ${wantDtype.join(' or ')}`,
        );
      if (wantShapes.length && !wantShapes.some((s) => sameShape(s, info.shape)))
        at(
          node,
          wn,
          ERROR,
          DiagnosticCodes.shapeMismatch,
          `Member "${member}" has shape ${shapeStr(info.shape)}; ${fld} of ${wLabel} should be ${shapeStr(wantShapes[0])}`,
        );
    }
  }

  // Layers present against model.num_layers.
  if (model && typeof model.num_layers === 'number') {
    const n = model.num_layers;
    for (const [layer, i] of layers) {
      if (layer >= n) {
        const w = weights[i] as Record<string, unknown>;
        at(
          ['weights', i, typeof w.layer === 'number' ? 'layer' : 'name'],
          ['weights', i],
          ERROR,
          DiagnosticCodes.modelMismatch,
          `Layer ${layer} is outside model.num_layers ${n}`,
        );
      }
    }
    if (layers.size > 0) {
      const missing: number[] = [];
      for (let l = 0; l < n && missing.length < 1000; l++) if (!layers.has(l)) missing.push(l);
      if (missing.length)
        at(
          ['model', 'num_layers'],
          ['model'],
          WARNING,
          DiagnosticCodes.modelMismatch,
          `model.num_layers is ${n} but ${missing.length} layer(s) have no weights (${rangesStr(missing)})`,
        );
    }
  }
  if (
    model &&
    qProjRows &&
    kProjRows &&
    typeof model.num_heads === 'number' &&
    typeof model.num_kv_heads === 'number'
  ) {
    if (kProjRows * model.num_heads !== qProjRows * model.num_kv_heads)
      at(
        ['model', 'num_kv_heads'],
        ['model'],
        ERROR,
        DiagnosticCodes.modelMismatch,
        `num_kv_heads / num_heads = ${model.num_kv_heads}/${model.num_heads} disagrees with k_proj rows / q_proj rows = ${kProjRows}/${qProjRows} (weights[${kProjWeight}])`,
      );
  }
  // The forward pass's head width (docs/FORMAT.md): q_proj has num_heads × head_dim rows.
  if (model && qProjRows && typeof model.head_dim === 'number' && typeof model.num_heads === 'number') {
    if (model.head_dim * model.num_heads !== qProjRows)
      at(
        ['model', 'head_dim'],
        ['model'],
        ERROR,
        DiagnosticCodes.modelMismatch,
        `head_dim × num_heads = ${model.head_dim} × ${model.num_heads} disagrees with q_proj rows ${qProjRows}`,
      );
  }

  // Members no weight refers to.
  if (index) {
    const unused: string[] = [];
    for (const k of index.members.keys()) if (!memberUse.has(k)) unused.push(k);
    for (const d of missingData) d.unreferenced = unused.slice(0, 20);
    if (unused.length)
      at(
        npzPath,
        ['metadata'],
        INFO,
        DiagnosticCodes.memberUnreferenced,
        `${unused.length} NPZ member(s) are not referenced by any weight: ${unused.slice(0, 5).join(', ')}${unused.length > 5 ? ', …' : ''}`,
      );
  }

  // Place the problems.
  const out: Diagnostic[] = [];
  for (const p of found) {
    yield;
    const node = (p.key ? keyAt(doc, p.path) : nodeAt(doc, p.path)) ?? nodeAt(doc, p.fallback) ?? doc.root;
    if (node) out.push(diag(doc.lines, node.offset, node.length, p.sev, p.code, p.msg, p.data));
  }
  return out;
}

function rangesStr(xs: number[]): string {
  const parts: string[] = [];
  for (let i = 0; i < xs.length; ) {
    let j = i;
    while (j + 1 < xs.length && xs[j + 1] === xs[j] + 1) j++;
    parts.push(i === j ? `${xs[i]}` : `${xs[i]}–${xs[j]}`);
    i = j + 1;
    if (parts.length >= 8) {
      if (i < xs.length) parts.push('…');
      break;
    }
  }
  return parts.join(', ');
}
