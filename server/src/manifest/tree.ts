// jsonc-parser's parseTree as steps (./steps.ts), so that the language server can build the tree of a large manifest a
// few milliseconds at a time: its `visit` recursive descent and its tree builder (jsonc-parser 3.3.1, MIT,
// lib/umd/impl/parser.js) ported line for line to generators over the same scanner (jsonc-parser's createScanner).
// Same error recovery, same errors, same nodes (key order included): test/unit/manifest/tree-steps.test.ts compares
// it with parseTree on random inputs. The options are the manifest's: no comments, no trailing commas, no empty
// content. Only objects and arrays are generators (a generator per scalar would double the cost).
import {
  createScanner,
  type Node,
  type NodeType,
  type ParseError,
  type ParseErrorCode,
  type SyntaxKind,
} from 'jsonc-parser';
import type { Steps } from './steps';

// jsonc-parser's const enums (isolatedModules cannot read them from its .d.ts).
const K = {
  OpenBrace: 1 as SyntaxKind,
  CloseBrace: 2 as SyntaxKind,
  OpenBracket: 3 as SyntaxKind,
  CloseBracket: 4 as SyntaxKind,
  Comma: 5 as SyntaxKind,
  Colon: 6 as SyntaxKind,
  Null: 7 as SyntaxKind,
  True: 8 as SyntaxKind,
  False: 9 as SyntaxKind,
  String: 10 as SyntaxKind,
  Number: 11 as SyntaxKind,
  LineComment: 12 as SyntaxKind,
  BlockComment: 13 as SyntaxKind,
  LineBreak: 14 as SyntaxKind,
  Trivia: 15 as SyntaxKind,
  Unknown: 16 as SyntaxKind,
  EOF: 17 as SyntaxKind,
};
const E = {
  InvalidSymbol: 1 as ParseErrorCode,
  InvalidNumberFormat: 2 as ParseErrorCode,
  PropertyNameExpected: 3 as ParseErrorCode,
  ValueExpected: 4 as ParseErrorCode,
  ColonExpected: 5 as ParseErrorCode,
  CommaExpected: 6 as ParseErrorCode,
  CloseBraceExpected: 7 as ParseErrorCode,
  CloseBracketExpected: 8 as ParseErrorCode,
  EndOfFileExpected: 9 as ParseErrorCode,
  InvalidCommentToken: 10 as ParseErrorCode,
  UnexpectedEndOfString: 12 as ParseErrorCode,
  UnexpectedEndOfNumber: 13 as ParseErrorCode,
  InvalidUnicode: 14 as ParseErrorCode,
  InvalidEscapeCharacter: 15 as ParseErrorCode,
  InvalidCharacter: 16 as ParseErrorCode,
};
/** jsonc-parser's ScanError → ParseErrorCode (UnexpectedEndOfComment cannot occur: comments are errors already). */
const SCAN_ERRORS: (ParseErrorCode | undefined)[] = [
  undefined,
  undefined,
  E.UnexpectedEndOfString,
  E.UnexpectedEndOfNumber,
  E.InvalidUnicode,
  E.InvalidEscapeCharacter,
  E.InvalidCharacter,
];

/** Yield about once per this many tokens (a few tens of microseconds). */
const TOKENS_PER_STEP = 256;
/** nodeValueSteps yields about once per this many objects and arrays. */
const CONTAINERS_PER_STEP = 256;

type MNode = {
  type: NodeType;
  value?: unknown;
  offset: number;
  length: number;
  colonOffset?: number;
  parent?: MNode;
  children?: MNode[];
};

function nodeType(value: unknown): NodeType {
  switch (typeof value) {
    case 'boolean':
      return 'boolean';
    case 'number':
      return 'number';
    case 'string':
      return 'string';
    case 'object':
      return !value ? 'null' : Array.isArray(value) ? 'array' : 'object';
    default:
      return 'null';
  }
}

/** `parseTree(text, errors, { disallowComments: true, allowTrailingComma: false, allowEmptyContent: false })`. */
export function* parseTreeSteps(text: string, errors: ParseError[]): Steps<Node | undefined> {
  const scanner = createScanner(text, false);
  let tokens = 0;
  let pauseAt = TOKENS_PER_STEP;
  let parent: MNode = { type: 'array', offset: -1, length: -1, children: [], parent: undefined }; // artificial root

  // The tree builder (parseTree's visitor).
  const ensurePropertyComplete = (endOffset: number) => {
    if (parent.type === 'property') {
      parent.length = endOffset - parent.offset;
      parent = parent.parent as MNode;
    }
  };
  const onValue = (n: MNode): MNode => {
    (parent.children as MNode[]).push(n);
    return n;
  };
  const onLiteralValue = (value: unknown) => {
    const offset = scanner.getTokenOffset();
    const length = scanner.getTokenLength();
    onValue({ type: nodeType(value), offset, length, parent, value });
    ensurePropertyComplete(offset + length);
  };
  const onContainerEnd = () => {
    const end = scanner.getTokenOffset() + scanner.getTokenLength();
    parent.length = end - parent.offset;
    parent = parent.parent as MNode;
    ensurePropertyComplete(end);
  };
  const onSeparator = (sep: ':' | ',') => {
    if (parent.type === 'property') {
      if (sep === ':') parent.colonOffset = scanner.getTokenOffset();
      else ensurePropertyComplete(scanner.getTokenOffset());
    }
  };
  const onError = (error: ParseErrorCode) =>
    errors.push({ error, offset: scanner.getTokenOffset(), length: scanner.getTokenLength() });

  // The parser (visit).
  function scanNext(): SyntaxKind {
    for (;;) {
      const token = scanner.scan();
      tokens++;
      const se = SCAN_ERRORS[scanner.getTokenError()];
      if (se !== undefined) handleError(se);
      switch (token) {
        case K.LineComment:
        case K.BlockComment:
          handleError(E.InvalidCommentToken);
          break;
        case K.Unknown:
          handleError(E.InvalidSymbol);
          break;
        case K.Trivia:
        case K.LineBreak:
          break;
        default:
          return token;
      }
    }
  }
  function handleError(error: ParseErrorCode, skipUntilAfter: SyntaxKind[] = [], skipUntil: SyntaxKind[] = []) {
    onError(error);
    if (skipUntilAfter.length + skipUntil.length > 0) {
      let token = scanner.getToken();
      while (token !== K.EOF) {
        if (skipUntilAfter.indexOf(token) !== -1) {
          scanNext();
          break;
        } else if (skipUntil.indexOf(token) !== -1) break;
        token = scanNext();
      }
    }
  }
  function parseString(isValue: boolean): boolean {
    const value = scanner.getTokenValue();
    if (isValue) onLiteralValue(value);
    else {
      const offset = scanner.getTokenOffset();
      const length = scanner.getTokenLength();
      parent = onValue({ type: 'property', offset, length: -1, parent, children: [] });
      (parent.children as MNode[]).push({ type: 'string', value, offset, length, parent });
    }
    scanNext();
    return true;
  }
  function parseLiteral(): boolean {
    switch (scanner.getToken()) {
      case K.Number: {
        let value = Number(scanner.getTokenValue());
        if (Number.isNaN(value)) {
          handleError(E.InvalidNumberFormat);
          value = 0;
        }
        onLiteralValue(value);
        break;
      }
      case K.Null:
        onLiteralValue(null);
        break;
      case K.True:
        onLiteralValue(true);
        break;
      case K.False:
        onLiteralValue(false);
        break;
      default:
        return false;
    }
    scanNext();
    return true;
  }
  /** parseValue: a generator for objects and arrays only. */
  function* parseValue(): Steps<boolean> {
    switch (scanner.getToken()) {
      case K.OpenBracket:
        return yield* parseArray();
      case K.OpenBrace:
        return yield* parseObject();
      default:
        return parseScalar();
    }
  }
  /** A string or literal value (a container: parseValue, whose steps the caller yields). */
  const parseScalar = () => (scanner.getToken() === K.String ? parseString(true) : parseLiteral());
  const isContainer = () => {
    const t = scanner.getToken();
    return t === K.OpenBracket || t === K.OpenBrace;
  };
  function* parseProperty(): Steps<boolean> {
    if (scanner.getToken() !== K.String) {
      handleError(E.PropertyNameExpected, [], [K.CloseBrace, K.Comma]);
      return false;
    }
    parseString(false);
    if (scanner.getToken() === K.Colon) {
      onSeparator(':');
      scanNext(); // consume colon
      const ok = isContainer() ? yield* parseValue() : parseScalar();
      if (!ok) handleError(E.ValueExpected, [], [K.CloseBrace, K.Comma]);
    } else {
      handleError(E.ColonExpected, [], [K.CloseBrace, K.Comma]);
    }
    return true;
  }
  /** The items of an object (properties) or an array (values) up to `close`, comma separated; a step every
   * TOKENS_PER_STEP tokens. */
  function* parseItems(close: SyntaxKind): Steps<void> {
    let needsComma = false;
    while (scanner.getToken() !== close && scanner.getToken() !== K.EOF) {
      if (tokens >= pauseAt) {
        pauseAt = tokens + TOKENS_PER_STEP;
        yield;
      }
      if (scanner.getToken() === K.Comma) {
        if (!needsComma) handleError(E.ValueExpected, [], []);
        onSeparator(',');
        scanNext(); // consume comma
      } else if (needsComma) {
        handleError(E.CommaExpected, [], []);
      }
      const ok = close === K.CloseBrace ? yield* parseProperty() : isContainer() ? yield* parseValue() : parseScalar();
      if (!ok) handleError(E.ValueExpected, [], [close, K.Comma]);
      needsComma = true;
    }
  }
  function* parseObject(): Steps<boolean> {
    parent = onValue({ type: 'object', offset: scanner.getTokenOffset(), length: -1, parent, children: [] });
    scanNext(); // consume open brace
    yield* parseItems(K.CloseBrace);
    // onObjectEnd: in case of a missing value for a property, make sure the property is complete first.
    ensurePropertyComplete(scanner.getTokenOffset() + scanner.getTokenLength());
    onContainerEnd();
    if (scanner.getToken() !== K.CloseBrace) handleError(E.CloseBraceExpected, [K.CloseBrace], []);
    else scanNext(); // consume close brace
    return true;
  }
  function* parseArray(): Steps<boolean> {
    parent = onValue({ type: 'array', offset: scanner.getTokenOffset(), length: -1, parent, children: [] });
    scanNext(); // consume open bracket
    yield* parseItems(K.CloseBracket);
    onContainerEnd();
    if (scanner.getToken() !== K.CloseBracket) handleError(E.CloseBracketExpected, [K.CloseBracket], []);
    else scanNext(); // consume close bracket
    return true;
  }

  scanNext();
  if (scanner.getToken() === K.EOF) handleError(E.ValueExpected, [], []);
  else if (!(yield* parseValue())) handleError(E.ValueExpected, [], []);
  else if (scanner.getToken() !== K.EOF) handleError(E.EndOfFileExpected, [], []);
  const result = (parent.children as MNode[])[0];
  if (result) delete result.parent;
  return result as Node | undefined;
}

/** The value of a tree node as steps: like jsonc-parser's getNodeValue, but never assigns to __proto__ and tolerates
 * incomplete properties (a property without a value is left out; of duplicates, the last wins). */
export function* nodeValueSteps(node: Node): Steps<unknown> {
  let count = 0;
  function* value(n: Node): Steps<unknown> {
    if (++count % CONTAINERS_PER_STEP === 0) yield;
    switch (n.type) {
      case 'object': {
        // A plain object, as JSON.parse makes; a "__proto__" key becomes an own property, never the prototype.
        const obj: Record<string, unknown> = {};
        for (const p of n.children ?? []) {
          const [k, v] = p.children ?? [];
          if (k && v) {
            const x = v.type === 'object' || v.type === 'array' ? yield* value(v) : v.value;
            const key = String(k.value);
            if (key === '__proto__')
              Object.defineProperty(obj, key, { value: x, enumerable: true, writable: true, configurable: true });
            else obj[key] = x;
          }
        }
        return obj;
      }
      case 'array': {
        const out: unknown[] = [];
        for (const c of n.children ?? [])
          out.push(c.type === 'object' || c.type === 'array' ? yield* value(c) : c.value);
        return out;
      }
      default:
        return n.value;
    }
  }
  return yield* value(node);
}
