/**
 * The nginx configuration syntax: tokenizer, block parser and `include`
 * expansion. It knows nothing about directive meanings (see directives.ts and
 * load.ts); it turns text into a tree of `name args… ;` and `name args… { … }`
 * nodes that remember the file, line and column they came from.
 *
 * Syntax, as nginx reads it (ngx_conf_read_token):
 * - words are separated by spaces, tabs and newlines; `;` ends a directive,
 *   `{` opens a block, `}` closes one;
 * - `#` at the start of a word starts a comment up to the end of the line
 *   (inside a word it is an ordinary character);
 * - "double" and 'single' quoted words may hold spaces, `;`, `{`, `}` and newlines;
 * - a backslash protects the next character; when words are copied, `\"`,
 *   `\'` and `\\` become the character, `\t` `\r` `\n` become tab, CR and LF,
 *   and any other `\x` stays as written (both characters);
 * - an unquoted word may contain `${name}` (the `{` right after `$` does not
 *   open a block); `$variables` are kept as text;
 * - a closing quote must be followed by a space, `;`, `{`, `}` or `)`; a `)`
 *   there starts a new word (nginx's `if ($request_method = 'OPTIONS')` reads
 *   as `($request_method`, `=`, `OPTIONS`, `)`).
 */
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { basename, dirname, join, parse as parsePath, resolve } from 'node:path';
import { ErrorCode, ServerError, describeError, serverError } from '../core/errors.js';

export interface SourceLocation {
  readonly file: string;
  /** 1-based */
  readonly line: number;
  /** 1-based, in UTF-16 code units; a tab counts as one */
  readonly col: number;
}

export interface ConfigNode {
  readonly name: string;
  readonly args: readonly string[];
  /** where each argument starts (same length as `args`) */
  readonly argLocs: readonly SourceLocation[];
  /** the directives between `{` and `}`; undefined for a `name args;` directive */
  readonly children: readonly ConfigNode[] | undefined;
  /** where the directive name starts */
  readonly loc: SourceLocation;
}

export type Token =
  | { readonly kind: 'word'; readonly value: string; readonly quoted: boolean; readonly loc: SourceLocation }
  | { readonly kind: ';' | '{' | '}'; readonly loc: SourceLocation };

type WordToken = Extract<Token, { kind: 'word' }>;

export interface ParseOptions {
  /** reads an included file (default: fs.readFileSync as UTF-8); throw when it cannot */
  readonly readFile?: (path: string) => string;
  /** expands an absolute glob pattern to the matching files' absolute paths (default: a file-system walk) */
  readonly glob?: (pattern: string) => readonly string[];
}

export interface ParsedConfig {
  /** the tree, includes expanded in place */
  readonly nodes: readonly ConfigNode[];
  /** syntax and include errors (a file with a syntax error contributes no nodes) */
  readonly errors: readonly ServerError[];
  /** `FILE:LINE:COL: message` lines: a missing `mime.types` include (the built-in MIME types are used) */
  readonly warnings?: readonly string[];
}

/** nginx's stock `include mime.types;`: when missing, a warning (the built-in types apply), not an error. */
const MIME_TYPES_FILE = 'mime.types';

/** Blocks nested deeper than this are refused (keeps hostile input from exhausting the stack later). */
export const MAX_BLOCK_DEPTH = 64;
/** Includes nested deeper than this are refused (a backstop behind cycle detection). */
export const MAX_INCLUDE_DEPTH = 32;

export function formatLocation(loc: SourceLocation): string {
  return `${loc.file}:${loc.line}:${loc.col}`;
}

/** A ServerError whose message is `FILE:LINE:COL: message`. */
export function locatedError(code: ErrorCode, loc: SourceLocation, message: string, cause?: unknown): ServerError {
  return serverError(code, `${formatLocation(loc)}: ${message}`, cause);
}

/** A word for an error message: double-quoted, control characters escaped, long words shortened. */
export function quote(word: string): string {
  const short = word.length > 60 ? `${word.slice(0, 57)}...` : word;
  return JSON.stringify(short);
}

function isSpace(c: string): boolean {
  return c === ' ' || c === '\t' || c === '\n' || c === '\r';
}

/** nginx's copy of a word: resolves the backslash escapes it knows, keeps the others. */
export function unescapeWord(raw: string): string {
  let out = '';
  let k = 0;
  while (k < raw.length) {
    const c = raw.charAt(k);
    if (c === '\\' && k + 1 < raw.length) {
      const next = raw.charAt(k + 1);
      if (next === '"' || next === "'" || next === '\\') {
        out += next;
        k += 2;
        continue;
      }
      if (next === 't' || next === 'r' || next === 'n') {
        out += next === 't' ? '\t' : next === 'r' ? '\r' : '\n';
        k += 2;
        continue;
      }
    }
    out += c;
    k += 1;
  }
  return out;
}

/** Splits configuration text into words and `;` `{` `}`. Throws a ConfigSyntax ServerError. */
export function tokenize(text: string, file: string): Token[] {
  const out: Token[] = [];
  const n = text.length;
  let i = 0;
  let line = 1;
  let col = 1;
  const here = (): SourceLocation => ({ file, line, col });
  const step = (): void => {
    if (text.charAt(i) === '\n') {
      line += 1;
      col = 1;
    } else {
      col += 1;
    }
    i += 1;
  };

  while (i < n) {
    const ch = text.charAt(i);
    if (isSpace(ch)) {
      step();
      continue;
    }
    if (ch === '#') {
      while (i < n && text.charAt(i) !== '\n') step();
      continue;
    }
    if (ch === ';' || ch === '{' || ch === '}') {
      out.push({ kind: ch, loc: here() });
      step();
      continue;
    }
    const start = here();
    if (ch === '"' || ch === "'") {
      step();
      const from = i;
      for (;;) {
        if (i >= n) {
          throw locatedError(ErrorCode.ConfigSyntax, start, `unterminated quoted string: unexpected end of file, expecting ${ch}`);
        }
        const c = text.charAt(i);
        if (c === '\\' && i + 1 < n) {
          step();
          step();
          continue;
        }
        if (c === ch) break;
        step();
      }
      const raw = text.slice(from, i);
      step();
      if (i < n) {
        const next = text.charAt(i);
        if (!isSpace(next) && next !== ';' && next !== '{' && next !== '}' && next !== ')') {
          throw locatedError(ErrorCode.ConfigSyntax, here(), `unexpected ${quote(next)} after a quoted string`);
        }
      }
      out.push({ kind: 'word', value: unescapeWord(raw), quoted: true, loc: start });
      continue;
    }
    const from = i;
    let variable = false;
    while (i < n) {
      const c = text.charAt(i);
      if (c === '\\') {
        step();
        if (i < n) step();
        variable = false;
        continue;
      }
      if (c === '{' && variable) {
        step();
        variable = false;
        continue;
      }
      variable = false;
      if (c === '$') {
        variable = true;
        step();
        continue;
      }
      if (isSpace(c) || c === ';' || c === '{') break;
      step();
    }
    out.push({ kind: 'word', value: unescapeWord(text.slice(from, i)), quoted: false, loc: start });
  }
  return out;
}

interface Frame {
  readonly nodes: ConfigNode[];
  words: WordToken[];
  /** the words before `{` of the block this frame is the inside of */
  readonly head: readonly WordToken[] | undefined;
}

function makeNode(words: readonly WordToken[], children: readonly ConfigNode[] | undefined): ConfigNode {
  const [first, ...rest] = words;
  if (first === undefined) throw new Error('internal: directive without a name');
  return {
    name: first.value,
    args: rest.map((w) => w.value),
    argLocs: rest.map((w) => w.loc),
    children,
    loc: first.loc,
  };
}

/** Builds the tree from tokens. `eof` is where the text ends (for end-of-file errors). */
export function parseTokens(tokens: readonly Token[], eof: SourceLocation): ConfigNode[] {
  const root: Frame = { nodes: [], words: [], head: undefined };
  const stack: Frame[] = [root];
  let top = root;
  for (const t of tokens) {
    switch (t.kind) {
      case 'word':
        top.words.push(t);
        break;
      case ';':
        if (top.words.length === 0) throw locatedError(ErrorCode.ConfigSyntax, t.loc, 'unexpected ";"');
        top.nodes.push(makeNode(top.words, undefined));
        top.words = [];
        break;
      case '{': {
        if (top.words.length === 0) throw locatedError(ErrorCode.ConfigSyntax, t.loc, 'unexpected "{"');
        if (stack.length > MAX_BLOCK_DEPTH) throw locatedError(ErrorCode.ConfigSyntax, t.loc, `blocks nested deeper than ${MAX_BLOCK_DEPTH} levels`);
        const inner: Frame = { nodes: [], words: [], head: top.words };
        top.words = [];
        stack.push(inner);
        top = inner;
        break;
      }
      case '}': {
        const pending = top.words[0];
        if (pending !== undefined) {
          throw locatedError(ErrorCode.ConfigSyntax, t.loc, `unexpected "}": directive ${quote(pending.value)} is not terminated by ";"`);
        }
        const head = top.head;
        if (head === undefined) throw locatedError(ErrorCode.ConfigSyntax, t.loc, 'unexpected "}"');
        stack.pop();
        const parent = stack[stack.length - 1];
        if (parent === undefined) throw new Error('internal: block stack underflow');
        parent.nodes.push(makeNode(head, top.nodes));
        top = parent;
        break;
      }
      default: {
        const never: never = t;
        throw new Error(`internal: token ${String(never)}`);
      }
    }
  }
  const pending = top.words[0];
  if (pending !== undefined) {
    throw locatedError(ErrorCode.ConfigSyntax, eof, `unexpected end of file, expecting ";" or "}" after directive ${quote(pending.value)}`);
  }
  const open = top.head?.[0];
  if (open !== undefined) {
    throw locatedError(ErrorCode.ConfigSyntax, eof, `unexpected end of file, expecting "}" to close block ${quote(open.value)} opened at ${open.loc.line}:${open.loc.col}`);
  }
  return root.nodes;
}

function endOf(text: string, file: string): SourceLocation {
  let line = 1;
  let col = 1;
  for (let i = 0; i < text.length; i++) {
    if (text.charAt(i) === '\n') {
      line += 1;
      col = 1;
    } else {
      col += 1;
    }
  }
  return { file, line, col };
}

/** Tokenizes and parses one file's text, without expanding includes. Throws a ConfigSyntax ServerError. */
export function parseSource(text: string, file: string): ConfigNode[] {
  return parseTokens(tokenize(text, file), endOf(text, file));
}

export function hasGlobMagic(pattern: string): boolean {
  return /[*?[]/.test(pattern);
}

/** One path segment of a glob (`*`, `?`, `[abc]`, `[!abc]`, `[a-z]`) as a RegExp. */
export function globSegmentRegExp(segment: string): RegExp {
  let re = '';
  for (let k = 0; k < segment.length; k++) {
    const c = segment.charAt(k);
    if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else if (c === '[') {
      const close = segment.indexOf(']', k + 2);
      if (close < 0) {
        re += '\\[';
        continue;
      }
      let body = segment.slice(k + 1, close);
      let negate = false;
      if (body.startsWith('!') || body.startsWith('^')) {
        negate = true;
        body = body.slice(1);
      }
      re += `[${negate ? '^' : ''}${body.replace(/[\\\]^]/g, (m) => `\\${m}`)}]`;
      k = close;
    } else re += c.replace(/[.*+?^${}()|[\]\\/]/g, (m) => `\\${m}`);
  }
  return new RegExp(`^${re}$`);
}

/**
 * The files matching an absolute glob pattern, sorted. Wildcards may appear in
 * any segment; names starting with "." only match a segment starting with ".".
 */
export function expandGlob(pattern: string): string[] {
  const abs = resolve(pattern);
  const root = parsePath(abs).root;
  const parts = abs
    .slice(root.length)
    .split(/[\\/]+/)
    .filter((p) => p !== '');
  let current: string[] = [root];
  for (const part of parts) {
    const next: string[] = [];
    for (const dir of current) {
      if (!hasGlobMagic(part)) {
        next.push(join(dir, part));
        continue;
      }
      let names: string[];
      try {
        names = readdirSync(dir);
      } catch {
        continue;
      }
      const re = globSegmentRegExp(part);
      for (const name of names.sort()) {
        if (name.startsWith('.') && !part.startsWith('.')) continue;
        if (re.test(name)) next.push(join(dir, name));
      }
    }
    current = next;
  }
  return current
    .filter((f) => {
      try {
        return statSync(f).isFile();
      } catch {
        return false;
      }
    })
    .sort();
}

interface IncludeState {
  readonly readFile: (path: string) => string;
  readonly glob: (pattern: string) => readonly string[];
  readonly errors: ServerError[];
  readonly warnings: string[];
}

function reason(e: unknown): string {
  const code = e instanceof Error ? (e as Error & { code?: unknown }).code : undefined;
  return typeof code === 'string' ? code : describeError(e).message;
}

function expandIncludes(nodes: readonly ConfigNode[], file: string, stack: readonly string[], st: IncludeState): ConfigNode[] {
  const out: ConfigNode[] = [];
  for (const node of nodes) {
    if (node.name === 'include' && node.children === undefined) {
      out.push(...includeFiles(node, file, stack, st));
    } else if (node.children !== undefined) {
      out.push({ ...node, children: expandIncludes(node.children, file, stack, st) });
    } else {
      out.push(node);
    }
  }
  return out;
}

function includeFiles(node: ConfigNode, file: string, stack: readonly string[], st: IncludeState): ConfigNode[] {
  const pattern = node.args[0];
  if (pattern === undefined || node.args.length !== 1) {
    st.errors.push(locatedError(ErrorCode.ConfigInclude, node.loc, 'invalid number of arguments in "include" directive'));
    return [];
  }
  const full = resolve(dirname(file), pattern);
  let files: readonly string[];
  if (hasGlobMagic(pattern)) {
    try {
      files = [...st.glob(full)].sort();
    } catch (e) {
      st.errors.push(locatedError(ErrorCode.ConfigInclude, node.loc, `cannot expand include pattern ${quote(pattern)} (${reason(e)})`, e));
      return [];
    }
  } else {
    files = [full];
  }
  const out: ConfigNode[] = [];
  for (const f of files) {
    const seen = stack.indexOf(f);
    if (seen >= 0) {
      st.errors.push(locatedError(ErrorCode.ConfigInclude, node.loc, `include cycle: ${[...stack.slice(seen), f].join(' -> ')}`));
      continue;
    }
    if (stack.length >= MAX_INCLUDE_DEPTH) {
      st.errors.push(locatedError(ErrorCode.ConfigInclude, node.loc, `includes nested deeper than ${MAX_INCLUDE_DEPTH} levels`));
      continue;
    }
    let text: string;
    try {
      text = st.readFile(f);
    } catch (e) {
      if (reason(e) === 'ENOENT' && basename(f) === MIME_TYPES_FILE) {
        // nginx installs ship this file next to nginx.conf; its types are built in here
        st.warnings.push(`${formatLocation(node.loc)}: included file ${quote(f)} does not exist: the built-in MIME types are used (HLS, DASH, FLV, MP4 and common web files)`);
        continue;
      }
      st.errors.push(locatedError(ErrorCode.ConfigInclude, node.loc, `cannot read included file ${quote(f)} (${reason(e)})`, e));
      continue;
    }
    let parsed: ConfigNode[];
    try {
      parsed = parseSource(text, f);
    } catch (e) {
      if (e instanceof ServerError) {
        st.errors.push(e);
        continue;
      }
      throw e;
    }
    out.push(...expandIncludes(parsed, f, [...stack, f], st));
  }
  return out;
}

/**
 * Parses `text` (the content of `file`) and expands every `include` in place:
 * a relative path is relative to the including file's directory, a glob that
 * matches nothing adds nothing, a missing plain file and an include cycle are
 * errors. Errors are collected, not thrown (a syntax error drops its file).
 */
export function parseConfigTree(text: string, file: string, opts: ParseOptions = {}): ParsedConfig {
  const st: IncludeState = {
    readFile: opts.readFile ?? ((p: string) => readFileSync(p, 'utf8')),
    glob: opts.glob ?? expandGlob,
    errors: [],
    warnings: [],
  };
  let nodes: ConfigNode[];
  try {
    nodes = parseSource(text, file);
  } catch (e) {
    if (e instanceof ServerError) return { nodes: [], errors: [e] };
    throw e;
  }
  const expanded = expandIncludes(nodes, file, [resolve(file)], st);
  return { nodes: expanded, errors: st.errors, warnings: st.warnings };
}
