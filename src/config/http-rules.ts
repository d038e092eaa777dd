/**
 * The http{} directives nginx-rtmp configurations use around HLS/DASH delivery
 * beyond root/alias/types: `add_header … always`, `expires`, `return`, and the
 * one form of `if` such files write (the CORS preflight):
 *
 *   if ($request_method = 'OPTIONS') { add_header …; return 204; }
 *
 * The loader (load.ts) keeps these directives' nodes as written (the `if`
 * block unread) and hands them here; this file checks them and builds the
 * typed `HttpRules` of one location. It knows no socket and no file.
 */
import type { ConfigNode, SourceLocation } from './parse.js';
import { quote } from './parse.js';

/** an `add_header NAME VALUE [always]` line */
export interface HeaderRule {
  readonly name: string;
  readonly value: string;
  /** `always`: also on error statuses (nginx: without it only on 2xx/3xx statuses) */
  readonly always: boolean;
}

/** `expires`: nginx's Cache-Control / Expires on successful responses */
export type ExpiresRule =
  /** `expires off`: nothing added, not even the HLS/DASH defaults */
  | { readonly kind: 'off' }
  | { readonly kind: 'epoch' }
  | { readonly kind: 'max' }
  /** a signed number of seconds from now (`modified`: from the file's mtime) */
  | { readonly kind: 'offset'; readonly seconds: number; readonly modified: boolean };

/** `return CODE [TEXT]`, `return CODE URL` (3xx), `return URL` (302) */
export interface HttpReturn {
  readonly status: number;
  /** the body; for a redirect status the Location */
  readonly text: string | undefined;
}

/** `if ($request_method = M) { … }` / `!=` */
export interface MethodRule {
  readonly method: string;
  readonly negate: boolean;
  /** the block's own add_header lines; undefined = the location's apply (nginx inheritance) */
  readonly headers: readonly HeaderRule[] | undefined;
  /** undefined: the request goes on, served with this block's headers */
  readonly ret: HttpReturn | undefined;
}

export interface HttpRules {
  /** every add_header in effect, in order (the nearest block that has any, as nginx merges) */
  readonly headers: readonly HeaderRule[];
  /** the server's `if` blocks, then the location's, in order: the first that matches applies */
  readonly conditions: readonly MethodRule[];
  /** the location's `return` (after the `if` blocks) */
  readonly ret: HttpReturn | undefined;
  /** undefined: no `expires` (then HLS/DASH files get the default cache headers, see src/http/delivery.ts) */
  readonly expires: ExpiresRule | undefined;
}

/** Called for each refused line; the loader turns it into a located ConfigBadValue error. */
export type RuleError = (loc: SourceLocation, message: string) => void;

const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const METHOD = /^[A-Z]{1,20}$/;
/** nginx's `return` takes codes up to 999; we take real HTTP statuses */
const MIN_STATUS = 100;
const MAX_STATUS = 599;
/** nginx's `expires max` */
export const EXPIRES_MAX_SECONDS = 315_360_000;

/**
 * The nginx variables `add_header` values and `return` texts may use
 * (expanded per request, src/http/delivery.ts); `$http_NAME` is any request
 * header. Another `$name` is refused when the file loads.
 */
export const HTTP_VARIABLES: readonly string[] = ['host', 'uri', 'request_uri', 'args', 'query_string', 'scheme', 'request_method', 'remote_addr', 'server_port'];

const VARIABLE = /\$(?:\{([A-Za-z0-9_]+)\}|([A-Za-z0-9_]+))/g;

/** The first variable of `text` we cannot expand, if any. */
export function unknownVariable(text: string): string | undefined {
  for (const m of text.matchAll(VARIABLE)) {
    const name = m[1] ?? m[2] ?? '';
    if (!HTTP_VARIABLES.includes(name) && !/^http_[a-z0-9_]+$/i.test(name)) return `$${name}`;
  }
  return undefined;
}

/** Replaces the variables of `text` with `lookup(name)` (undefined: empty, as nginx does for an absent header). */
export function expandVariables(text: string, lookup: (name: string) => string | undefined): string {
  if (!text.includes('$')) return text;
  return text.replace(VARIABLE, (_all, braced: string | undefined, plain: string | undefined) => lookup(braced ?? plain ?? '') ?? '');
}

/** `add_header` nodes (arity already checked by the table) as rules. */
export function readHeaders(nodes: readonly ConfigNode[], err: RuleError): HeaderRule[] {
  const out: HeaderRule[] = [];
  for (const n of nodes) {
    const [name = '', value = '', flag] = n.args;
    if (!HEADER_NAME.test(name)) {
      err(n.argLocs[0] ?? n.loc, `"add_header": ${quote(name)} is not a valid header name`);
      continue;
    }
    if (/[\r\n\0]/.test(value)) {
      err(n.argLocs[1] ?? n.loc, '"add_header": a header value cannot hold CR, LF or NUL');
      continue;
    }
    const unknown = unknownVariable(value);
    if (unknown !== undefined) {
      err(n.argLocs[1] ?? n.loc, `"add_header": variable ${quote(unknown)} is not supported (supported: $http_NAME, ${HTTP_VARIABLES.map((v) => `$${v}`).join(', ')})`);
      continue;
    }
    if (flag !== undefined && flag !== 'always') {
      err(n.argLocs[2] ?? n.loc, `"add_header": expected "always", not ${quote(flag)}`);
      continue;
    }
    out.push({ name, value, always: flag === 'always' });
  }
  return out;
}

/** nginx time for `expires`: `30s`, `1h`, `24h`, `-1`, `1d12h`; a plain number is seconds. Seconds, signed. */
function parseExpiresTime(text: string): number | undefined {
  const neg = text.startsWith('-');
  const body = neg || text.startsWith('+') ? text.slice(1) : text;
  if (body === '') return undefined;
  if (/^\d+$/.test(body)) return (neg ? -1 : 1) * Number(body);
  const units: Readonly<Record<string, number>> = { s: 1, m: 60, h: 3600, d: 86_400, w: 604_800, M: 2_592_000, y: 31_536_000 };
  let total = 0;
  let rest = body;
  while (rest !== '') {
    const m = /^(\d+)(ms|[smhdwMy])/.exec(rest);
    if (m === null) return undefined;
    const unit = m[2] ?? 's';
    total += unit === 'ms' ? Math.floor(Number(m[1]) / 1000) : Number(m[1]) * (units[unit] ?? 1);
    rest = rest.slice(m[0].length);
  }
  if (!Number.isSafeInteger(total)) return undefined;
  return neg ? -total : total;
}

/** `expires [modified] TIME | epoch | max | off`; undefined for no line or a refused one. */
export function readExpires(node: ConfigNode | undefined, err: RuleError): ExpiresRule | undefined {
  if (node === undefined) return undefined;
  const args = node.args;
  const modified = args[0] === 'modified';
  if (args.length === 2 && !modified) {
    err(node.argLocs[0] ?? node.loc, `"expires": expected "modified" before the time, not ${quote(args[0] ?? '')}`);
    return undefined;
  }
  const value = args[args.length - 1] ?? '';
  const at = node.argLocs[args.length - 1] ?? node.loc;
  if (!modified) {
    if (value === 'off') return { kind: 'off' };
    if (value === 'epoch') return { kind: 'epoch' };
    if (value === 'max') return { kind: 'max' };
  }
  if (value.startsWith('@')) {
    err(at, '"expires @time" (a time of day) is not supported');
    return undefined;
  }
  const seconds = parseExpiresTime(value);
  if (seconds === undefined) {
    err(at, `"expires": invalid value ${quote(value)} (expected a time such as 30s, 24h, -1, or epoch, max, off)`);
    return undefined;
  }
  return { kind: 'offset', seconds, modified };
}

/** `return CODE [TEXT]` / `return URL`. */
export function readReturn(node: ConfigNode, err: RuleError): HttpReturn | undefined {
  const [first = '', second] = node.args;
  const unknown = node.args.map(unknownVariable).find((v) => v !== undefined);
  if (unknown !== undefined) {
    err(node.loc, `"return": variable ${quote(unknown)} is not supported (supported: $http_NAME, ${HTTP_VARIABLES.map((v) => `$${v}`).join(', ')})`);
    return undefined;
  }
  if (node.args.length === 1 && /^(https?:\/\/|\$scheme)/.test(first)) return { status: 302, text: first };
  if (!/^\d{3}$/.test(first)) {
    err(node.argLocs[0] ?? node.loc, `"return": invalid return code ${quote(first)}`);
    return undefined;
  }
  const status = Number(first);
  if (status < MIN_STATUS || status > MAX_STATUS) {
    err(node.argLocs[0] ?? node.loc, `"return": return code ${status} is outside ${MIN_STATUS}-${MAX_STATUS}`);
    return undefined;
  }
  if (second !== undefined && /[\r\n\0]/.test(second) && [301, 302, 303, 307, 308].includes(status)) {
    err(node.argLocs[1] ?? node.loc, '"return": a redirect URL cannot hold CR, LF or NUL');
    return undefined;
  }
  return { status, text: second };
}

/** The condition words of `if`, as the tokenizer gives them: `($request_method`, `=`, `OPTIONS`, `)` (or glued). */
function readCondition(node: ConfigNode, err: RuleError): { method: string; negate: boolean } | undefined {
  const words = [...node.args];
  const refuse = (why: string): undefined => {
    err(node.loc, `"if": ${why}; only "if ($request_method = METHOD)" and "!=" are supported`);
    return undefined;
  };
  const first = words[0];
  if (first === undefined || !first.startsWith('(')) return refuse('the condition must be in parentheses');
  if (first === '(') words.shift();
  else words[0] = first.slice(1);
  const last = words[words.length - 1];
  if (last === undefined || !last.endsWith(')')) return refuse('the condition must be in parentheses');
  if (last === ')') words.pop();
  else words[words.length - 1] = last.slice(0, -1);
  const [variable, op, value, ...extra] = words;
  if (variable !== '$request_method') return refuse(`condition on ${quote(variable ?? '')}`);
  if (op !== '=' && op !== '!=') return refuse(`operator ${quote(op ?? '')}`);
  if (value === undefined || extra.length > 0) return refuse('expected exactly one method');
  if (!METHOD.test(value)) return refuse(`${quote(value)} is not an HTTP method`);
  return { method: value, negate: op === '!=' };
}

/** One `if` block: its condition and its `add_header` / `return` lines (anything else is refused). */
export function readIf(node: ConfigNode, err: RuleError): MethodRule | undefined {
  const cond = readCondition(node, err);
  const headerNodes: ConfigNode[] = [];
  let ret: HttpReturn | undefined;
  let ok = cond !== undefined;
  for (const c of node.children ?? []) {
    if (c.children !== undefined) {
      err(c.loc, `"if": a block (${quote(c.name)}) inside "if" is not supported`);
      ok = false;
      continue;
    }
    if (c.name === 'add_header') {
      if (c.args.length < 2 || c.args.length > 3) {
        err(c.loc, 'invalid number of arguments in "add_header" directive');
        ok = false;
      } else headerNodes.push(c);
    } else if (c.name === 'return') {
      if (ret !== undefined || c.args.length < 1 || c.args.length > 2) {
        err(c.loc, ret !== undefined ? '"return" directive is duplicate' : 'invalid number of arguments in "return" directive');
        ok = false;
        continue;
      }
      ret = readReturn(c, err);
      if (ret === undefined) ok = false;
    } else {
      err(c.loc, `directive ${quote(c.name)} is not supported inside "if" (only add_header and return are)`);
      ok = false;
    }
  }
  const before = headerNodes.length;
  const headers = readHeaders(headerNodes, err);
  if (headers.length !== before || !ok || cond === undefined) return undefined;
  return { method: cond.method, negate: cond.negate, headers: headers.length > 0 ? headers : undefined, ret };
}

/** What one location's rules are read from (nodes as written, inheritance already applied by the loader). */
export interface RuleSources {
  /** the add_header lines in effect (the nearest block that has any) */
  readonly addHeaders: readonly ConfigNode[];
  /** the `if` blocks of the server, then of the location */
  readonly ifs: readonly ConfigNode[];
  /** the location's own `return` */
  readonly ret: ConfigNode | undefined;
  /** the `expires` in effect */
  readonly expires: ConfigNode | undefined;
}

export function readHttpRules(src: RuleSources, err: RuleError): HttpRules {
  const conditions: MethodRule[] = [];
  for (const n of src.ifs) {
    const rule = readIf(n, err);
    if (rule !== undefined) conditions.push(rule);
  }
  return {
    headers: readHeaders(src.addHeaders, err),
    conditions,
    ret: src.ret === undefined ? undefined : readReturn(src.ret, err),
    expires: readExpires(src.expires, err),
  };
}

/** The rule a request with this method meets first, if any. */
export function matchCondition(rules: HttpRules | undefined, method: string): MethodRule | undefined {
  return rules?.conditions.find((c) => (c.method === method) !== c.negate);
}
