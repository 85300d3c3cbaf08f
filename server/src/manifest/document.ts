// Parsing a manifest's text once into what every feature needs: the JSON tree with offsets (jsonc-parser), the
// plain value (for ajv and the cross-checks), syntax diagnostics, and offset ↔ line/character mapping.
// Hostile input is bounded here: nesting deeper than MAX_DEPTH is reported and never handed to a recursive parser.
// Every pass over the whole text also exists as steps (./steps.ts), which the language server runs in slices.
import { findNodeAtLocation, type Node, type ParseError, printParseErrorCode } from 'jsonc-parser';
import { type Diagnostic, DiagnosticSeverity, type Position, type Range } from 'vscode-languageserver-types';
import { DIAGNOSTIC_SOURCE, DiagnosticCodes, MAX_DEPTH } from './codes';
import { drain, type Steps } from './steps';
import { nodeValueSteps, parseTreeSteps } from './tree';

export type { Node } from 'jsonc-parser';

const MAX_SYNTAX_DIAGNOSTICS = 100;

/** The offsets where lines start, as steps (one per 64 K characters). */
function* lineStartsSteps(text: string): Steps<number[]> {
  const starts = [0];
  for (let i = 0; i < text.length; i++) {
    if ((i & 0xffff) === 0xffff) yield;
    const c = text.charCodeAt(i);
    if (c === 10) starts.push(i + 1);
    else if (c === 13) {
      if (text.charCodeAt(i + 1) === 10) i++;
      starts.push(i + 1);
    }
  }
  return starts;
}

/** Offset ↔ position for one text (UTF-16 offsets, as LSP and JavaScript strings count). */
export class LineIndex {
  private readonly starts: number[];
  constructor(
    readonly text: string,
    starts?: number[],
  ) {
    this.starts = starts ?? drain(lineStartsSteps(text));
  }
  static *build(text: string): Steps<LineIndex> {
    return new LineIndex(text, yield* lineStartsSteps(text));
  }
  get lineCount(): number {
    return this.starts.length;
  }
  positionAt(offset: number): Position {
    offset = Math.max(0, Math.min(offset, this.text.length));
    let lo = 0;
    let hi = this.starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.starts[mid] <= offset) lo = mid;
      else hi = mid - 1;
    }
    return { line: lo, character: offset - this.starts[lo] };
  }
  offsetAt(pos: Position): number {
    if (pos.line < 0) return 0;
    if (pos.line >= this.starts.length) return this.text.length;
    const start = this.starts[pos.line];
    const next = pos.line + 1 < this.starts.length ? this.starts[pos.line + 1] : this.text.length;
    return Math.max(start, Math.min(start + pos.character, next));
  }
  range(offset: number, length: number): Range {
    return { start: this.positionAt(offset), end: this.positionAt(offset + length) };
  }
  lineStart(line: number): number {
    return this.starts[Math.max(0, Math.min(line, this.starts.length - 1))];
  }
}

export type JsonPath = (string | number)[];

export interface ManifestDoc {
  readonly text: string;
  /** Offset ↔ position (built on first use). */
  readonly lines: LineIndex;
  /** The JSON tree (built on first use when the text is valid JSON); undefined for empty or too-deep text. */
  readonly root: Node | undefined;
  /** The parsed value (error-tolerant when there are syntax errors); undefined when there is none. */
  readonly value: unknown;
  /** Syntax diagnostics (code apl.syntax), at most MAX_SYNTAX_DIAGNOSTICS + 1. */
  readonly syntax: Diagnostic[];
  /** True when the document could not be parsed at all (nesting too deep). */
  readonly unparsable: boolean;
}

/**
 * A parsed manifest. Valid JSON (the common case) is parsed by the native JSON.parse; the jsonc-parser tree, which
 * costs an order of magnitude more, is built only when something needs offsets (a diagnostic to place, a hover).
 */
class Parsed implements ManifestDoc {
  private _lines?: LineIndex;
  private _root?: Node;
  private _rootDone = false;
  /** The tree being built in steps (shared: whoever needs it next continues it). */
  private _building?: Steps<void>;
  constructor(
    readonly text: string,
    readonly value: unknown,
    readonly syntax: Diagnostic[],
    readonly unparsable: boolean,
    root?: Node,
    lines?: LineIndex,
  ) {
    if (root || unparsable) {
      this._root = root;
      this._rootDone = true;
    }
    this._lines = lines;
  }
  get lines(): LineIndex {
    if (!this._lines) this._lines = new LineIndex(this.text);
    return this._lines;
  }
  get root(): Node | undefined {
    if (!this._rootDone) drain(this.treeSteps());
    return this._root;
  }
  /** Builds the tree in steps, continuing a build already under way (by another caller). */
  *treeSteps(): Steps<void> {
    if (this._rootDone) return;
    this._building ??= this.build();
    while (!this._rootDone && !this._building.next().done) yield;
  }
  /** Builds the tree and the line index in steps. */
  *warmSteps(): Steps<void> {
    yield* this.treeSteps();
    if (!this._lines) {
      const lines = yield* LineIndex.build(this.text);
      this._lines ??= lines;
    }
  }
  private *build(): Steps<void> {
    const root = yield* parseTreeSteps(this.text, []);
    this._root = root;
    this._rootDone = true;
    this._building = undefined;
  }
}

/** Builds what positions need (the tree, the line index) in steps; afterwards `doc.root` and `doc.lines` cost nothing. */
export function* warmSteps(doc: ManifestDoc): Steps<void> {
  if (doc instanceof Parsed) yield* doc.warmSteps();
  else {
    void doc.root;
    void doc.lines;
  }
}

/** Offset of the first bracket that opens nesting level `limit + 1`, or -1. Strings and comments are skipped. */
export function tooDeepAt(text: string, limit = MAX_DEPTH): number {
  let depth = 0;
  const n = text.length;
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22 /* " */) {
      for (i++; i < n; i++) {
        const d = text.charCodeAt(i);
        if (d === 0x5c /* \ */) i++;
        else if (d === 0x22 || d === 10 || d === 13) break;
      }
    } else if (c === 0x7b /* { */ || c === 0x5b /* [ */) {
      if (++depth > limit) return i;
    } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) {
      if (depth > 0) depth--;
    } else if (c === 0x2f /* / */ && i + 1 < n) {
      const d = text.charCodeAt(i + 1);
      if (d === 0x2f) {
        while (i < n && text.charCodeAt(i) !== 10) i++;
      } else if (d === 0x2a) {
        const end = text.indexOf('*/', i + 2);
        i = end < 0 ? n : end + 1;
      }
    }
  }
  return -1;
}

const syntaxMessages: Record<string, string> = {
  InvalidSymbol: 'Invalid symbol',
  InvalidNumberFormat: 'Invalid number format',
  PropertyNameExpected: 'Property name expected',
  ValueExpected: 'Value expected',
  ColonExpected: 'Colon expected',
  CommaExpected: 'Comma expected',
  CloseBraceExpected: 'Closing brace expected',
  CloseBracketExpected: 'Closing bracket expected',
  EndOfFileExpected: 'End of file expected',
  InvalidCommentToken: 'Comments are not allowed in JSON',
  UnexpectedEndOfComment: 'Unexpected end of comment',
  UnexpectedEndOfString: 'Unexpected end of string',
  UnexpectedEndOfNumber: 'Unexpected end of number',
  InvalidUnicode: 'Invalid unicode sequence in string',
  InvalidEscapeCharacter: 'Invalid escape character in string',
  InvalidCharacter: 'Invalid characters in string (control characters must be escaped)',
};

export function diag(
  lines: LineIndex,
  offset: number,
  length: number,
  severity: DiagnosticSeverity,
  code: string,
  message: string,
  data?: unknown,
): Diagnostic {
  const d: Diagnostic = { range: lines.range(offset, length), severity, code, source: DIAGNOSTIC_SOURCE, message };
  if (data !== undefined) d.data = data;
  return d;
}

/** Parses a manifest's text. Never throws; cost is linear in the text. */
export function parseManifest(text: string): ManifestDoc {
  return drain(parseManifestSteps(text));
}

/** parseManifest as steps. */
export function* parseManifestSteps(text: string): Steps<ManifestDoc> {
  const deep = tooDeepAt(text);
  if (deep >= 0) {
    const lines = new LineIndex(text);
    const d = diag(
      lines,
      deep,
      1,
      DiagnosticSeverity.Error,
      DiagnosticCodes.syntax,
      `JSON nested deeper than ${MAX_DEPTH} levels; not analysed`,
    );
    return new Parsed(text, undefined, [d], true);
  }
  if (text.charCodeAt(0) !== 0xfeff) {
    try {
      return new Parsed(text, JSON.parse(text), [], false);
    } catch {
      // Not valid JSON: the tolerant parser below finds every error and a best-effort value.
    }
  }
  const errors: ParseError[] = [];
  const root = yield* parseTreeSteps(text, errors);
  const lines = yield* LineIndex.build(text);
  const syntax: Diagnostic[] = [];
  for (const e of errors) {
    if (syntax.length >= MAX_SYNTAX_DIAGNOSTICS) {
      syntax.push(
        diag(
          lines,
          e.offset,
          e.length,
          DiagnosticSeverity.Error,
          DiagnosticCodes.syntax,
          `${errors.length - syntax.length} more syntax errors`,
        ),
      );
      break;
    }
    const name = printParseErrorCode(e.error);
    const length = e.length > 0 ? e.length : Math.min(1, text.length - e.offset);
    syntax.push(
      diag(lines, e.offset, length, DiagnosticSeverity.Error, DiagnosticCodes.syntax, syntaxMessages[name] ?? name),
    );
  }
  const value = root ? yield* nodeValueSteps(root) : undefined;
  return new Parsed(text, value, syntax, false, root, lines);
}

/** Like jsonc-parser's getNodeValue, but never assigns to __proto__ and tolerates incomplete properties. */
export function nodeValue(node: Node): unknown {
  return drain(nodeValueSteps(node));
}

/** The property node `key` of an object node (the last one when duplicated, as JSON.parse keeps). */
export function propertyNode(obj: Node | undefined, key: string): Node | undefined {
  if (obj?.type !== 'object' || !obj.children) return undefined;
  for (let i = obj.children.length - 1; i >= 0; i--) {
    const p = obj.children[i];
    if (p.children?.[0]?.value === key) return p;
  }
  return undefined;
}

/** The value node of property `key` of an object node. */
export function valueNode(obj: Node | undefined, key: string): Node | undefined {
  return propertyNode(obj, key)?.children?.[1];
}

/** Node at a JSON path, or undefined. */
export function nodeAt(doc: ManifestDoc, path: JsonPath): Node | undefined {
  return doc.root ? findNodeAtLocation(doc.root, path) : undefined;
}

/** The key node of the property at `path` (whose last segment is the key), or undefined. */
export function keyAt(doc: ManifestDoc, path: JsonPath): Node | undefined {
  if (!path.length) return undefined;
  const obj = path.length === 1 ? doc.root : nodeAt(doc, path.slice(0, -1));
  return propertyNode(obj, String(path[path.length - 1]))?.children?.[0];
}

export function nodeRange(doc: ManifestDoc, node: Node): Range {
  return doc.lines.range(node.offset, node.length);
}

/** The weight objects of the manifest, as tree nodes (index = position in `weights`). */
export function weightNodes(doc: ManifestDoc): Node[] {
  const arr = valueNode(doc.root, 'weights');
  if (arr?.type !== 'array') return [];
  return arr.children ?? [];
}

/** The layer a weight belongs to: its `layer` field, else `layers.<n>.` / `layer_<n>` in its name. */
export function layerOf(weight: { layer?: unknown; name?: unknown }): number | undefined {
  if (typeof weight.layer === 'number' && Number.isInteger(weight.layer) && weight.layer >= 0) return weight.layer;
  if (typeof weight.name !== 'string') return undefined;
  const m = /(?:^|[._])(?:layers?|h|blocks?)[._](\d+)(?:[._]|$)/.exec(weight.name);
  return m ? Number(m[1]) : undefined;
}

export function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
