// Schema validation (ajv, JSON Schema 2020-12) with errors mapped to exact ranges: the key for a missing or unknown
// property, the value otherwise. Also the schema lookups that hover, completion and quick fixes share.
import Ajv2020, { type ErrorObject } from 'ajv/dist/2020';
import { type Diagnostic, DiagnosticSeverity } from 'vscode-languageserver-types';
import schemaJson from '../../../schemas/manifest.schema.json';
import { DiagnosticCodes } from './codes';
import { diag, type ManifestDoc, type Node, propertyNode } from './document';
import { drain, type Steps } from './steps';

export type JsonSchema = {
  $ref?: string;
  description?: string;
  type?: string | string[];
  properties?: Record<string, JsonSchema>;
  additionalProperties?: boolean | JsonSchema;
  required?: string[];
  items?: JsonSchema;
  enum?: unknown[];
  const?: unknown;
  default?: unknown;
  examples?: unknown[];
  anyOf?: JsonSchema[];
  $defs?: Record<string, JsonSchema>;
};

export const manifestSchema = schemaJson as unknown as JsonSchema;

// Two validators: the manifest with `weights` only required to be an array, and one weight. The weights are then
// validated one by one, so a hostile document with errors in every weight stops at the diagnostic limit instead of
// making ajv collect millions of errors.
const ajv = new Ajv2020({ allErrors: true, strict: true });
const shellSchema = {
  ...manifestSchema,
  properties: { ...manifestSchema.properties, weights: { description: 'weights', type: 'array' } },
};
const validateShell = ajv.compile(shellSchema);
const validateWeight = ajv.compile({ $defs: manifestSchema.$defs, $ref: '#/$defs/weight' });

/** Data carried by an apl.schema diagnostic for a missing property: the quick fix inserts it. */
export interface MissingPropertyData {
  kind: 'missing';
  /** JSON path of the object that lacks the property. */
  path: (string | number)[];
  property: string;
}

/** Splits an ajv instancePath (JSON pointer) into segments, numbers for array indices (by the tree's shape). */
function pointerSegments(pointer: string): string[] {
  if (!pointer) return [];
  return pointer
    .slice(1)
    .split('/')
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
}

/** Walks the tree along pointer segments; returns the node and the property node that holds it (if any). */
function walk(root: Node, segs: string[]): { node: Node; prop?: Node; path: (string | number)[] } | undefined {
  let node = root;
  let prop: Node | undefined;
  const path: (string | number)[] = [];
  for (const s of segs) {
    if (node.type === 'array') {
      const i = Number(s);
      const c = node.children?.[i];
      if (!c) return undefined;
      node = c;
      prop = undefined;
      path.push(i);
    } else if (node.type === 'object') {
      const p = propertyNode(node, s);
      const v = p?.children?.[1];
      if (!p || !v) return undefined;
      prop = p;
      node = v;
      path.push(s);
    } else return undefined;
  }
  return { node, prop, path };
}

/** `['weights', 3, 'quantization']` → `weights[3].quantization`. */
export function pathLabel(path: readonly (string | number)[]): string {
  let out = '';
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : out ? `.${p}` : p;
  return out;
}

function fmt(v: unknown): string {
  return JSON.stringify(v);
}

function messageOf(e: ErrorObject, label: string): string {
  const p = e.params as Record<string, unknown>;
  switch (e.keyword) {
    case 'enum':
      return `${label} must be one of ${(p.allowedValues as unknown[]).map(fmt).join(', ')}`;
    case 'const':
      return `${label} must be ${fmt(p.allowedValue)}`;
    case 'type':
      return `${label} must be of type ${Array.isArray(p.type) ? (p.type as string[]).join(' or ') : p.type}`;
    case 'anyOf':
      return `${label} does not match any allowed form`;
    default:
      return `${label} ${e.message ?? 'is invalid'}`;
  }
}

/** Schema diagnostics (code apl.schema) for a parsed manifest. */
export function schemaDiagnostics(doc: ManifestDoc, limit = Number.POSITIVE_INFINITY): Diagnostic[] {
  return drain(schemaDiagnosticsSteps(doc, limit));
}

/** schemaDiagnostics as steps: one per weight validated, one per error placed. */
export function* schemaDiagnosticsSteps(doc: ManifestDoc, limit = Number.POSITIVE_INFINITY): Steps<Diagnostic[]> {
  const out: Diagnostic[] = [];
  if (doc.value === undefined) return out;
  const errors: ErrorObject[] = [];
  if (!validateShell(doc.value)) errors.push(...(validateShell.errors ?? []));
  const weights =
    typeof doc.value === 'object' && doc.value !== null ? (doc.value as { weights?: unknown }).weights : undefined;
  if (Array.isArray(weights)) {
    // Stop once enough errors are known (each error gives at most one diagnostic).
    for (let i = 0; i < weights.length && errors.length <= limit; i++) {
      yield;
      if (validateWeight(weights[i])) continue;
      for (const e of validateWeight.errors ?? [])
        errors.push({ ...e, instancePath: `/weights/${i}${e.instancePath}` });
    }
  }
  if (!errors.length) return out;
  // An anyOf error stands for its branches' errors at the same place.
  const anyOfAt = new Set(errors.filter((e) => e.keyword === 'anyOf').map((e) => e.instancePath));
  for (const e of errors) {
    yield;
    if (out.length >= limit) break;
    if (e.keyword !== 'anyOf' && anyOfAt.has(e.instancePath) && e.schemaPath.includes('/anyOf/')) continue;
    if (e.keyword === 'if') continue;
    const segs = pointerSegments(e.instancePath);
    const root = doc.root; // built only now that there is something to place
    if (!root) break;
    const at = walk(root, segs);
    if (!at) continue;
    const label = segs.length ? pathLabel(at.path) : 'manifest';
    if (e.keyword === 'required') {
      const property = String((e.params as { missingProperty: string }).missingProperty);
      // The key that holds the object, else the object's opening brace.
      const keyNode = at.prop?.children?.[0];
      const r = keyNode ?? { offset: at.node.offset, length: 1 };
      const data: MissingPropertyData = { kind: 'missing', path: at.path, property };
      const where = segs.length ? label : 'the manifest';
      out.push(
        diag(
          doc.lines,
          r.offset,
          r.length,
          DiagnosticSeverity.Error,
          DiagnosticCodes.schema,
          `Missing property "${property}" in ${where}`,
          data,
        ),
      );
    } else if (e.keyword === 'additionalProperties') {
      const property = String((e.params as { additionalProperty: string }).additionalProperty);
      const keyNode = propertyNode(at.node, property)?.children?.[0];
      const r = keyNode ?? at.node;
      out.push(
        diag(
          doc.lines,
          r.offset,
          r.length,
          DiagnosticSeverity.Warning,
          DiagnosticCodes.schema,
          `Property "${property}" is not allowed here`,
          {
            kind: 'unknown',
            path: at.path,
            property,
          },
        ),
      );
    } else {
      out.push(
        diag(
          doc.lines,
          at.node.offset,
          at.node.length,
          DiagnosticSeverity.Error,
          DiagnosticCodes.schema,
          messageOf(e, label),
        ),
      );
    }
  }
  return out;
}

function deref(s: JsonSchema | undefined): JsonSchema | undefined {
  let guard = 0;
  while (s?.$ref && guard++ < 16) {
    const m = /^#\/\$defs\/(.+)$/.exec(s.$ref);
    const target = m ? manifestSchema.$defs?.[m[1]] : undefined;
    if (!target) return s;
    // A local description beside $ref wins over the target's.
    s = { ...target, ...pick(s) };
  }
  return s;
}

function pick(s: JsonSchema): JsonSchema {
  return s.description ? { description: s.description } : {};
}

/** The (dereferenced) schema of the value at a JSON path, or undefined when the schema does not describe it. */
export function schemaAt(path: readonly (string | number)[]): JsonSchema | undefined {
  let s = deref(manifestSchema);
  for (const seg of path) {
    if (!s) return undefined;
    if (typeof seg === 'number') s = deref(s.items);
    else {
      const sub = s.properties?.[seg];
      s = deref(sub ?? (typeof s.additionalProperties === 'object' ? s.additionalProperties : undefined));
    }
  }
  return s;
}

/** The value a quick fix inserts for a missing property at `path`. */
export function defaultFor(path: readonly (string | number)[]): unknown {
  const s = schemaAt(path);
  if (!s) return null;
  if (s.default !== undefined) return s.default;
  if (s.const !== undefined) return s.const;
  if (s.enum?.length) return s.enum[0];
  const t = Array.isArray(s.type) ? s.type[0] : s.type;
  switch (t) {
    case 'string':
      return '';
    case 'integer':
    case 'number':
      return 0;
    case 'boolean':
      return false;
    case 'array':
      return [];
    case 'object':
      return {};
    default:
      return null;
  }
}
