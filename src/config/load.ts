/**
 * Turns the parsed nginx-style tree into the typed, deeply frozen ServerConfig.
 *
 * Every directive is checked against the table in directives.ts: unknown name
 * → ConfigUnknownDirective, wrong block → ConfigBadContext, unsupported →
 * ConfigUnsupported, bad arguments → ConfigBadValue. All errors of a file are
 * collected and thrown together as one ServerError whose message has one
 * `FILE:LINE:COL: message` line per error (its `cause` is the list).
 *
 * Inheritance follows nginx-rtmp's merge functions:
 * - server-level settings (timeout, ping, chunk_size…): server, else rtmp, else default;
 * - application settings (live, meta, notify_*, on_*, exec_options, respawn…):
 *   application, else server, else rtmp, else default;
 * - allow/deny and the exec lists: the application's own entries, then the
 *   server's, then the rtmp block's (nginx-rtmp appends the parent's list);
 * - push/pull exist in applications only; exec_static lines form one global
 *   list (ServerConfig.execStatic), as nginx-rtmp keeps them in its main conf;
 * - http: root/default_type/add_header/types are taken from the nearest of
 *   location, server, http (a block with its own add_header or types does not
 *   see the outer ones, as in nginx); http allow/deny likewise: the innermost
 *   block with any allow/deny line keeps its own (nginx's access module);
 * - set_real_ip_from: the server's lines, else the rtmp block's.
 */
import { readFileSync } from 'node:fs';
import { vodConfig } from './vod.js';
import { isIP, isIPv4, isIPv6 } from 'node:net';
import { constants as osConstants } from 'node:os';
import { ErrorCode, ServerError, describeError, serverError } from '../core/errors.js';
import { readHttpDelivery, type HttpDelivery } from './http-delivery.js';
import { type ConfigContext, type DirectiveSpec, type ValueType, directiveSpec, directivesNamed, findDirective } from './directives.js';
import { type DirectiveValues, readRecordConfig } from './record.js';
import { readDashSettings } from './dash.js';
import { type ConfigNode, type ParseOptions, type SourceLocation, formatLocation, locatedError, parseConfigTree, quote } from './parse.js';
import { readHlsSettings } from './hls.js';
import { type HttpRules, readHttpRules } from './http-rules.js';
import type {
  AccessKind,
  AccessRule,
  ApplicationConfig,
  ControlSection,
  HttpAccessRule,
  StatSection,
  ExecCommand,
  ExecSettings,
  HttpLocation,
  HttpServerConfig,
  ListenSpec,
  LiveSettings,
  LogSettings,
  MetaMode,
  NotifySettings,
  RelayTarget,
  RtmpServerConfig,
  ServerConfig,
} from './types.js';

export type LoadOptions = ParseOptions;

// ------------------------------------------------------------------ values

const TIME_UNITS: readonly (readonly [string, number])[] = [
  ['y', 365 * 86_400_000],
  ['M', 30 * 86_400_000],
  ['w', 7 * 86_400_000],
  ['d', 86_400_000],
  ['h', 3_600_000],
  ['ms', 1],
  ['m', 60_000],
  ['s', 1000],
];
/** units from largest to smallest: a time must use them in this order, each once */
const TIME_ORDER = ['y', 'M', 'w', 'd', 'h', 'm', 's', 'ms'];

/**
 * An nginx time in milliseconds: `500ms`, `30s`, `5m`, `1h`, `1d`, `1w`,
 * `1M` (30 days), `1y`, combinations from the largest unit down (`1h30m`,
 * `1m 30s`), and a plain number = seconds (`60` = 60000). undefined if invalid.
 */
export function parseTime(text: string): number | undefined {
  let i = 0;
  let total = 0;
  let lastOrder = -1;
  let any = false;
  const n = text.length;
  while (i < n) {
    while (i < n && text.charAt(i) === ' ') i++;
    if (i >= n) break;
    const digitsFrom = i;
    while (i < n && text.charAt(i) >= '0' && text.charAt(i) <= '9') i++;
    if (i === digitsFrom) return undefined;
    const value = Number(text.slice(digitsFrom, i));
    const unit = TIME_UNITS.find(([u]) => text.startsWith(u, i));
    let scale: number;
    if (unit === undefined) {
      // a bare number must be the last component; it counts in seconds
      while (i < n && text.charAt(i) === ' ') i++;
      if (i < n) return undefined;
      scale = 1000;
      if (lastOrder >= TIME_ORDER.indexOf('s')) return undefined;
    } else {
      const order = TIME_ORDER.indexOf(unit[0]);
      if (order <= lastOrder) return undefined;
      lastOrder = order;
      scale = unit[1];
      i += unit[0].length;
    }
    total += value * scale;
    any = true;
    if (!Number.isSafeInteger(total)) return undefined;
  }
  return any ? total : undefined;
}

/** An nginx size in bytes: `4096`, `128k`/`128K`, `1m`/`1M`, `1g`/`1G`. undefined if invalid. */
export function parseSize(text: string): number | undefined {
  const m = /^(\d+)([kKmMgG]?)$/.exec(text);
  if (m === null) return undefined;
  const unit = (m[2] ?? '').toLowerCase();
  const scale = unit === 'k' ? 1024 : unit === 'm' ? 1024 * 1024 : unit === 'g' ? 1024 * 1024 * 1024 : 1;
  const v = Number(m[1]) * scale;
  return Number.isSafeInteger(v) ? v : undefined;
}

/** `on` / `off` (any case, as nginx). undefined if neither. */
export function parseFlag(text: string): boolean | undefined {
  const t = text.toLowerCase();
  return t === 'on' ? true : t === 'off' ? false : undefined;
}

function parseInteger(text: string): number | undefined {
  if (!/^\d+$/.test(text)) return undefined;
  const v = Number(text);
  return Number.isSafeInteger(v) ? v : undefined;
}

const SIGNAL_NAMES = ['HUP', 'INT', 'QUIT', 'ILL', 'ABRT', 'FPE', 'KILL', 'SEGV', 'PIPE', 'ALRM', 'TERM', 'USR1', 'USR2', 'CHLD', 'CONT', 'STOP', 'TSTP', 'TTIN', 'TTOU'];

/** `kill`, `TERM`, `sigusr1`, `9` → `SIGKILL`-style names (what process.kill takes). */
export function parseSignal(text: string): string | undefined {
  if (/^\d+$/.test(text)) {
    const num = Number(text);
    const hit = Object.entries(osConstants.signals).find(([name, v]) => v === num && SIGNAL_NAMES.includes(name.slice(3)));
    return hit?.[0];
  }
  const upper = text.toUpperCase().replace(/^SIG/, '');
  return SIGNAL_NAMES.includes(upper) ? `SIG${upper}` : undefined;
}

const HOSTNAME = /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

type HostPort = { readonly host: string; readonly port: number } | { readonly error: string; readonly unsupported?: boolean };

/**
 * `1935`, `127.0.0.1:1935`, `*:1935`, `[::]:1935`, `host:1935`, `host`.
 * `wildcard` allows `*` and a bare port (listen); `defaultPort` is used when there is no port.
 */
function parseHostPort(text: string, defaultPort: number | undefined, wildcard: boolean): HostPort {
  if (text.startsWith('unix:')) return { error: 'UNIX domain sockets are not supported', unsupported: true };
  let host: string;
  let portText: string | undefined;
  if (/^\d+$/.test(text)) {
    if (!wildcard) return { error: 'a host is required' };
    host = '0.0.0.0';
    portText = text;
  } else if (text.startsWith('[')) {
    const close = text.indexOf(']');
    if (close < 0) return { error: 'missing "]" after an IPv6 address' };
    host = text.slice(1, close);
    if (!isIPv6(host) || host.includes('%')) return { error: `${quote(host)} is not an IPv6 address` };
    const rest = text.slice(close + 1);
    if (rest !== '' && !rest.startsWith(':')) return { error: 'expected ":port" after "]"' };
    portText = rest === '' ? undefined : rest.slice(1);
  } else {
    if (isIPv6(text)) return { error: `write IPv6 addresses in brackets: [${text}]` };
    const colon = text.lastIndexOf(':');
    host = colon < 0 ? text : text.slice(0, colon);
    portText = colon < 0 ? undefined : text.slice(colon + 1);
    if (host === '*') {
      if (!wildcard) return { error: '"*" is not a host' };
      host = '0.0.0.0';
    } else if (/^[\d.]+$/.test(host) ? !isIPv4(host) : !HOSTNAME.test(host)) {
      return { error: `${quote(host)} is not an address or host name` };
    }
  }
  let port: number;
  if (portText === undefined) {
    if (defaultPort === undefined) return { error: 'a port is required' };
    port = defaultPort;
  } else {
    const p = parseInteger(portText);
    if (p === undefined || p > 65535) return { error: `invalid port ${quote(portText)}` };
    port = p;
  }
  return { host, port };
}

function ipv4Bits(addr: string): number[] {
  return addr.split('.').flatMap((part) => {
    const v = Number(part);
    return Array.from({ length: 8 }, (_, k) => (v >> (7 - k)) & 1);
  });
}

function ipv6Bits(addr: string): number[] {
  let text = addr;
  const lastColon = text.lastIndexOf(':');
  const tail = text.slice(lastColon + 1);
  if (tail.includes('.')) {
    const b = tail.split('.').map(Number);
    const hi = (((b[0] ?? 0) << 8) | (b[1] ?? 0)).toString(16);
    const lo = (((b[2] ?? 0) << 8) | (b[3] ?? 0)).toString(16);
    text = `${text.slice(0, lastColon + 1)}${hi}:${lo}`;
  }
  const double = text.indexOf('::');
  let groups: string[];
  if (double < 0) groups = text.split(':');
  else {
    const head = text.slice(0, double).split(':').filter((g) => g !== '');
    const rest = text.slice(double + 2).split(':').filter((g) => g !== '');
    groups = [...head, ...Array.from({ length: 8 - head.length - rest.length }, () => '0'), ...rest];
  }
  return groups.flatMap((g) => {
    const v = parseInt(g, 16);
    return Array.from({ length: 16 }, (_, k) => (v >> (15 - k)) & 1);
  });
}

type AddressCheck = { readonly ok: true; readonly lowBits: boolean } | { readonly ok: false; readonly error: string };

/** `all`, an IPv4/IPv6 address, or address/prefix. */
function checkAccessAddress(text: string): AddressCheck {
  if (text === 'all') return { ok: true, lowBits: false };
  const slash = text.indexOf('/');
  const addr = slash < 0 ? text : text.slice(0, slash);
  const family = addr.includes('%') ? 0 : isIP(addr);
  if (family === 0) return { ok: false, error: `${quote(addr)} is not an IPv4 or IPv6 address` };
  if (slash < 0) return { ok: true, lowBits: false };
  const prefix = parseInteger(text.slice(slash + 1));
  const width = family === 4 ? 32 : 128;
  if (prefix === undefined || prefix > width) return { ok: false, error: `invalid prefix length ${quote(text.slice(slash + 1))}` };
  const bits = family === 4 ? ipv4Bits(addr) : ipv6Bits(addr);
  return { ok: true, lowBits: bits.slice(prefix).some((b) => b === 1) };
}

const RELAY_STRING_KEYS = ['app', 'name', 'playPath', 'tcUrl', 'pageUrl', 'swfUrl', 'flashVer'] as const;
const RELAY_NUMBER_KEYS = ['live', 'start', 'stop', 'static'] as const;

const EXEC_KINDS: readonly ExecCommand['kind'][] = [
  'exec',
  'exec_push',
  'exec_pull',
  'exec_static',
  'exec_publish',
  'exec_publish_done',
  'exec_play',
  'exec_play_done',
  'exec_record_started',
  'exec_record_done',
];

const LOG_LEVELS: Readonly<Record<string, LogSettings['level']>> = {
  debug: 'debug',
  info: 'info',
  notice: 'info',
  warn: 'warn',
  error: 'error',
  crit: 'fatal',
  alert: 'fatal',
  emerg: 'fatal',
};

const STAT_MODES = ['all', 'global', 'live', 'clients', 'record'];
const CONTROL_MODES = ['all', 'record', 'drop', 'redirect'];
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

// ----------------------------------------------------------------- entries

/** A directive's arguments once read. */
type Parsed =
  | { readonly kind: 'none' }
  | { readonly kind: 'flag'; readonly value: boolean }
  | { readonly kind: 'int'; readonly value: number }
  | { readonly kind: 'text'; readonly value: string }
  | { readonly kind: 'listen'; readonly value: ListenSpec; readonly keepaliveSet: boolean }
  | { readonly kind: 'access'; readonly value: readonly AccessRule[] }
  | { readonly kind: 'relay'; readonly value: RelayTarget }
  | { readonly kind: 'exec'; readonly value: ExecCommand }
  | { readonly kind: 'header'; readonly value: readonly [string, string] }
  | { readonly kind: 'log'; readonly value: LogSettings }
  | { readonly kind: 'location'; readonly path: string; readonly exact: boolean }
  | { readonly kind: 'modes'; readonly value: readonly string[] }
  | { readonly kind: 'http_access'; readonly value: HttpAccessRule };

interface Entry {
  readonly spec: DirectiveSpec;
  readonly node: ConfigNode;
  readonly parsed: Parsed;
}

/** The directives written directly in one block. */
class Scope {
  private readonly byName = new Map<string, Entry[]>();
  /** every entry in the order written */
  readonly all: Entry[] = [];
  /** extension → MIME type, when the block has a `types {}` */
  types: Map<string, string> | undefined;

  add(e: Entry): void {
    const list = this.byName.get(e.spec.name);
    if (list === undefined) this.byName.set(e.spec.name, [e]);
    else list.push(e);
    this.all.push(e);
  }

  get(name: string): readonly Entry[] {
    return this.byName.get(name) ?? [];
  }

  names(): string[] {
    return [...this.byName.keys()];
  }
}

class Issues {
  readonly errors: ServerError[] = [];
  readonly warnings: string[] = [];

  error(code: ErrorCode, loc: SourceLocation, message: string): void {
    this.errors.push(locatedError(code, loc, message));
  }

  warn(loc: SourceLocation, message: string): void {
    this.warnings.push(`${formatLocation(loc)}: ${message}`);
  }
}

/** Argument reader for one directive: reports errors at the argument's position. */
class Args {
  constructor(
    readonly node: ConfigNode,
    private readonly issues: Issues,
  ) {}

  get name(): string {
    return this.node.name;
  }

  at(i: number): string {
    return this.node.args[i] ?? '';
  }

  loc(i: number): SourceLocation {
    return this.node.argLocs[i] ?? this.node.loc;
  }

  bad(i: number, why: string): undefined {
    this.issues.error(ErrorCode.ConfigBadValue, this.loc(i), `invalid value ${quote(this.at(i))} in ${quote(this.name)} directive: ${why}`);
    return undefined;
  }

  unsupported(i: number, why: string): undefined {
    this.issues.error(ErrorCode.ConfigUnsupported, this.loc(i), `${quote(this.name)} directive: ${why}`);
    return undefined;
  }

  warn(i: number, message: string): void {
    this.issues.warn(this.loc(i), message);
  }
}

// ------------------------------------------------------- argument readers

function readListen(a: Args, http: boolean): Parsed | undefined {
  const hp = parseHostPort(a.at(0), http ? 80 : 1935, true);
  if ('error' in hp) return hp.unsupported === true ? a.unsupported(0, hp.error) : a.bad(0, hp.error);
  let proxyProtocol = false;
  let ipv6Only = false;
  let soKeepalive: boolean | undefined;
  for (let i = 1; i < a.node.args.length; i++) {
    const p = a.at(i);
    if (p === 'proxy_protocol') proxyProtocol = true;
    else if (p === 'bind') continue;
    else if (p.startsWith('ipv6only=')) {
      const f = parseFlag(p.slice('ipv6only='.length));
      if (f === undefined) return a.bad(i, 'expected ipv6only=on or ipv6only=off');
      if (!isIPv6(hp.host)) return a.bad(i, 'ipv6only applies to IPv6 addresses only');
      ipv6Only = f;
    } else if (p.startsWith('so_keepalive=')) {
      const v = p.slice('so_keepalive='.length);
      const f = parseFlag(v);
      if (f !== undefined) soKeepalive = f;
      else if (/^(\d+[a-z]*)?:(\d+[a-z]*)?:(\d*)$/.test(v) && v !== '::') soKeepalive = true;
      else return a.bad(i, 'expected so_keepalive=on, off or idle:interval:count');
    } else if (http && ['default_server', 'default', 'reuseport', 'deferred'].includes(p)) continue;
    else if (http && /^(backlog|rcvbuf|sndbuf|fastopen|accept_filter|setfib)=./.test(p)) continue;
    else if (http && ['ssl', 'http2', 'quic', 'spdy'].includes(p)) return a.unsupported(i, `the ${quote(p)} listen parameter is not supported yet`);
    else return a.bad(i, 'unknown listen parameter');
  }
  const value: ListenSpec = { host: hp.host, port: hp.port, proxyProtocol, ipv6Only, ...(soKeepalive !== undefined ? { soKeepalive } : {}) };
  return { kind: 'listen', value, keepaliveSet: soKeepalive !== undefined };
}

function readAccess(a: Args): Parsed | undefined {
  const action = a.name === 'deny' ? 'deny' : 'allow';
  let kinds: readonly AccessKind[] = ['publish', 'play'];
  let addrIndex = 0;
  if (a.node.args.length === 2) {
    const k = a.at(0);
    if (k !== 'publish' && k !== 'play') return a.bad(0, 'expected "publish" or "play"');
    kinds = [k];
    addrIndex = 1;
  }
  const address = a.at(addrIndex);
  const check = checkAccessAddress(address);
  if (!check.ok) return a.bad(addrIndex, check.error);
  if (check.lowBits) a.warn(addrIndex, `low address bits of ${address} are meaningless`);
  return { kind: 'access', value: kinds.map((kind) => ({ action, kind, address })) };
}

function readRelay(a: Args): Parsed | undefined {
  const pull = a.name === 'pull';
  const raw = a.at(0);
  let rest = raw;
  const scheme = /^([a-zA-Z][a-zA-Z0-9+.-]*):\/\//.exec(raw);
  if (scheme !== null) {
    const s = (scheme[1] ?? '').toLowerCase();
    if (s === 'rtmps') return a.unsupported(0, 'rtmps:// relays are not supported yet');
    if (s !== 'rtmp') return a.bad(0, 'expected an rtmp:// URL');
    rest = raw.slice(scheme[0].length);
  }
  const slash = rest.indexOf('/');
  const hostPort = slash < 0 ? rest : rest.slice(0, slash);
  const uri = slash < 0 ? '' : rest.slice(slash + 1);
  const hp = parseHostPort(hostPort, 1935, false);
  if ('error' in hp) return a.bad(0, hp.error);
  const firstSlash = uri.indexOf('/');
  const urlApp = firstSlash < 0 ? uri : uri.slice(0, firstSlash);
  const urlPath = firstSlash < 0 ? '' : uri.slice(firstSlash + 1);

  let app: string | undefined;
  let name: string | undefined;
  let playPath: string | undefined;
  let live: boolean | undefined;
  let isStatic = false;
  const params: Record<string, string> = {};
  for (let i = 1; i < a.node.args.length; i++) {
    const p = a.at(i);
    const eq = p.indexOf('=');
    const key = (eq < 0 ? p : p.slice(0, eq)).toLowerCase();
    const value = eq < 0 ? '1' : p.slice(eq + 1);
    const strKey = RELAY_STRING_KEYS.find((k) => k.toLowerCase() === key);
    const numKey = RELAY_NUMBER_KEYS.find((k) => k.toLowerCase() === key);
    if (strKey !== undefined) {
      if (strKey === 'app') app = value;
      else if (strKey === 'name') name = value;
      else if (strKey === 'playPath') playPath = value;
      else params[strKey] = value;
    } else if (numKey !== undefined) {
      if (!/^-?\d+$/.test(value)) return a.bad(i, `${quote(numKey)} takes a number`);
      const v = Number(value);
      if (numKey === 'live') live = v !== 0;
      else if (numKey === 'static') isStatic = v !== 0;
      else params[numKey] = value;
    } else {
      return a.bad(i, 'unsupported relay parameter (known: app, name, playPath, tcUrl, pageUrl, swfUrl, flashVer, live, start, stop, static)');
    }
  }
  if (isStatic && !pull) return a.bad(0, 'static push is not allowed');
  if (isStatic && name === undefined) return a.bad(0, 'stream name missing in static pull declaration (add name=…)');
  const value: RelayTarget = {
    url: `rtmp://${rest}`,
    app: app ?? (urlApp !== '' ? urlApp : undefined),
    name,
    playPath: playPath ?? (urlPath !== '' ? urlPath : undefined),
    live,
    isStatic,
    params,
  };
  return { kind: 'relay', value };
}

function readNotifyUrl(a: Args): Parsed | undefined {
  const raw = a.at(0);
  const scheme = /^([a-zA-Z][a-zA-Z0-9+.-]*):\/\//.exec(raw);
  const url = scheme === null ? `http://${raw}` : raw;
  const s = (scheme?.[1] ?? 'http').toLowerCase();
  if (s !== 'http' && s !== 'https') return a.bad(0, 'expected an http:// URL');
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return a.bad(0, 'not a valid URL');
  }
  if (parsed.hostname === '') return a.bad(0, 'the URL has no host');
  return { kind: 'text', value: url };
}

function readErrorLog(a: Args): Parsed | undefined {
  const dest = a.at(0);
  if (dest.startsWith('syslog:') || dest.startsWith('memory:')) return a.unsupported(0, `"${dest.slice(0, dest.indexOf(':'))}:" logging is not supported yet`);
  const destination = dest === 'stderr' || dest === '/dev/stderr' ? 'stderr' : dest === 'stdout' || dest === '/dev/stdout' ? 'stdout' : dest;
  const levelWord = a.node.args.length > 1 ? a.at(1) : 'error';
  const level = LOG_LEVELS[levelWord];
  if (level === undefined) return a.bad(1, 'expected debug, info, notice, warn, error, crit, alert or emerg');
  return { kind: 'log', value: { destination, level } };
}

function readLocation(a: Args): Parsed | undefined {
  let exact = false;
  let pathIndex = 0;
  if (a.node.args.length === 2) {
    const mod = a.at(0);
    pathIndex = 1;
    if (mod === '=') exact = true;
    else if (mod === '~' || mod === '~*') return a.unsupported(0, 'regular expression locations are not supported');
    else if (mod !== '^~') return a.bad(0, 'expected "=", "^~", "~" or "~*"');
  }
  const path = a.at(pathIndex);
  if (path.startsWith('@')) return a.unsupported(pathIndex, 'named locations are not supported');
  if (/^~\*?$/.test(path) && a.node.args.length === 1) return a.bad(pathIndex, 'a location needs a path');
  if (!path.startsWith('/')) return a.bad(pathIndex, 'a location path starts with "/"');
  return { kind: 'location', path, exact };
}

function readModes(a: Args, modes: readonly string[]): Parsed | undefined {
  const value: string[] = [];
  for (let i = 0; i < a.node.args.length; i++) {
    const m = a.at(i).toLowerCase();
    if (!modes.includes(m)) return a.bad(i, `expected ${modes.join(', ')}`);
    value.push(m);
  }
  return { kind: 'modes', value };
}

/** `allow|deny ADDRESS|CIDR|all` of the http blocks. */
function readHttpAccess(a: Args): Parsed | undefined {
  const address = a.at(0);
  const check = checkAccessAddress(address);
  if (!check.ok) return a.bad(0, check.error);
  if (check.lowBits) a.warn(0, `low address bits of ${address} are meaningless`);
  return { kind: 'http_access', value: { action: a.name === 'deny' ? 'deny' : 'allow', address } };
}

/** An address, a CIDR network or `all` (set_real_ip_from). */
function readAddress(a: Args): Parsed | undefined {
  const address = a.at(0);
  const check = checkAccessAddress(address);
  if (!check.ok) return a.bad(0, check.error);
  if (check.lowBits) a.warn(0, `low address bits of ${address} are meaningless`);
  return { kind: 'text', value: address };
}

function inRange(a: Args, spec: DirectiveSpec, v: number, unit: string): Parsed | undefined {
  if (spec.min !== undefined && v < spec.min) return a.bad(0, `must be at least ${spec.min}${unit}`);
  if (spec.max !== undefined && v > spec.max) return a.bad(0, `must be at most ${spec.max}${unit}`);
  return { kind: 'int', value: v };
}

/** Reads a directive's arguments according to its value type (arity already checked). */
function readValue(spec: DirectiveSpec, a: Args): Parsed | undefined {
  const v: ValueType = spec.value;
  const first = a.at(0);
  switch (v) {
    case 'none':
    case 'words':
      return { kind: 'none' };
    case 'string':
      if (first === '') return a.bad(0, 'must not be empty');
      return { kind: 'text', value: first };
    case 'flag': {
      const f = parseFlag(first);
      return f === undefined ? a.bad(0, 'expected "on" or "off"') : { kind: 'flag', value: f };
    }
    case 'number': {
      const n = parseInteger(first);
      return n === undefined ? a.bad(0, 'expected a number') : inRange(a, spec, n, '');
    }
    case 'size': {
      const n = parseSize(first);
      return n === undefined ? a.bad(0, 'expected a size such as 4096, 128k or 1m') : inRange(a, spec, n, ' bytes');
    }
    case 'time': {
      const n = parseTime(first);
      return n === undefined ? a.bad(0, 'expected a time such as 500ms, 30s, 5m or 1h (a plain number is seconds)') : inRange(a, spec, n, 'ms');
    }
    case 'time_or_off': {
      if (first.toLowerCase() === 'off') return { kind: 'int', value: 0 };
      const n = parseTime(first);
      return n === undefined ? a.bad(0, 'expected "off" or a time such as 500ms, 30s or 5m') : inRange(a, spec, n, 'ms');
    }
    case 'enum': {
      const values = spec.values ?? [];
      const t = first.toLowerCase();
      return values.includes(t) ? { kind: 'text', value: t } : a.bad(0, `expected ${values.join(', ')}`);
    }
    case 'notify_url':
      return readNotifyUrl(a);
    case 'signal': {
      const s = parseSignal(first);
      return s === undefined ? a.bad(0, 'expected a signal name (term, kill, hup, usr1…) or number') : { kind: 'text', value: s };
    }
    case 'listen_rtmp':
      return readListen(a, false);
    case 'listen_http':
      return readListen(a, true);
    case 'access_rule':
      return readAccess(a);
    case 'relay':
      return readRelay(a);
    case 'exec': {
      const kind = EXEC_KINDS.find((k) => k === spec.name);
      if (kind === undefined) return a.bad(0, 'not an exec directive');
      return { kind: 'exec', value: { kind, argv: [...a.node.args] } };
    }
    case 'header': {
      if (!HEADER_NAME.test(first)) return a.bad(0, 'not a valid header name');
      if (a.node.args.length === 3 && a.at(2) !== 'always') return a.bad(2, 'expected "always"');
      return { kind: 'header', value: [first, a.at(1)] };
    }
    case 'error_log':
      return readErrorLog(a);
    case 'location':
      return readLocation(a);
    case 'stat_modes':
      return readModes(a, STAT_MODES);
    case 'control_modes':
      return readModes(a, CONTROL_MODES);
    case 'http_access_rule':
      return readHttpAccess(a);
    case 'address':
      return readAddress(a);
    default: {
      const never: never = v;
      throw new Error(`internal: value type ${String(never)}`);
    }
  }
}

/** Single-valued slots nginx refuses to see twice in one block ("is duplicate"). */
const DUPLICATE_IS_ERROR: ReadonlySet<ValueType> = new Set<ValueType>(['flag', 'number', 'size', 'time', 'time_or_off', 'enum', 'string']);

// ------------------------------------------------------------------- walk

interface AppTree {
  readonly name: string;
  readonly loc: SourceLocation;
  readonly scope: Scope;
  /** `recorder NAME { ... }` blocks (record directives only; src/config/record.ts) */
  readonly recorders: AppTree[];
  /** this tree is a recorder block */
  readonly isRecorder?: boolean;
}
interface RtmpServerTree {
  readonly loc: SourceLocation;
  readonly scope: Scope;
  readonly apps: AppTree[];
}
interface RtmpTree {
  readonly loc: SourceLocation;
  readonly scope: Scope;
  readonly servers: RtmpServerTree[];
}
interface LocationTree {
  readonly loc: SourceLocation;
  readonly path: string;
  readonly exact: boolean;
  readonly scope: Scope;
}
interface HttpServerTree {
  readonly loc: SourceLocation;
  readonly scope: Scope;
  readonly locations: LocationTree[];
}
interface HttpTree {
  readonly loc: SourceLocation;
  readonly scope: Scope;
  readonly servers: HttpServerTree[];
}
interface MainTree {
  readonly scope: Scope;
  rtmp: RtmpTree | undefined;
  http: HttpTree | undefined;
}

/** The block being read, with what its child blocks attach to. */
type Owner =
  | { readonly ctx: 'main'; readonly scope: Scope; readonly tree: MainTree }
  | { readonly ctx: 'events'; readonly scope: Scope }
  | { readonly ctx: 'rtmp'; readonly scope: Scope; readonly tree: RtmpTree }
  | { readonly ctx: 'server'; readonly scope: Scope; readonly tree: RtmpServerTree }
  | { readonly ctx: 'application'; readonly scope: Scope; readonly tree: AppTree }
  | { readonly ctx: 'http'; readonly scope: Scope; readonly tree: HttpTree }
  | { readonly ctx: 'http_server'; readonly scope: Scope; readonly tree: HttpServerTree }
  | { readonly ctx: 'location'; readonly scope: Scope; readonly tree: LocationTree };

const CONTEXT_LABEL: Readonly<Record<ConfigContext, string>> = {
  main: 'main',
  events: 'events',
  rtmp: 'rtmp',
  server: 'rtmp server',
  application: 'application',
  http: 'http',
  http_server: 'http server',
  location: 'location',
};

function walk(nodes: readonly ConfigNode[], owner: Owner, issues: Issues): void {
  for (const node of nodes) visit(node, owner, issues);
}

function visit(node: ConfigNode, owner: Owner, issues: Issues): void {
  const named = directivesNamed(node.name);
  if (named.length === 0) {
    issues.error(ErrorCode.ConfigUnknownDirective, node.loc, `unknown directive ${quote(node.name)}`);
    return;
  }
  const spec = named.find((s) => s.contexts.includes(owner.ctx));
  if (spec === undefined) {
    const allowed = [...new Set(named.flatMap((s) => s.contexts))].map((c) => CONTEXT_LABEL[c]).join(', ');
    issues.error(ErrorCode.ConfigBadContext, node.loc, `directive ${quote(node.name)} is not allowed here (in ${CONTEXT_LABEL[owner.ctx]}; allowed in: ${allowed})`);
    return;
  }
  if (spec.status === 'unsupported') {
    issues.error(ErrorCode.ConfigUnsupported, node.loc, `directive ${quote(node.name)} is not supported yet`);
    return;
  }
  if (spec.block !== undefined && node.children === undefined) {
    issues.error(ErrorCode.ConfigSyntax, node.loc, `directive ${quote(node.name)} has no opening "{"`);
    return;
  }
  if (spec.block === undefined && node.children !== undefined) {
    issues.error(ErrorCode.ConfigSyntax, node.loc, `directive ${quote(node.name)} is not terminated by ";"`);
    return;
  }
  if (node.args.length < spec.minArgs || (spec.maxArgs !== undefined && node.args.length > spec.maxArgs)) {
    issues.error(ErrorCode.ConfigBadValue, node.loc, `invalid number of arguments in ${quote(node.name)} directive`);
    return;
  }
  if (spec.status === 'ignored') {
    if (owner.ctx !== 'events') issues.warn(node.loc, `directive ${quote(node.name)} is ignored`);
    if (spec.block === 'events' && node.children !== undefined) walk(node.children, { ctx: 'events', scope: new Scope() }, issues);
    return;
  }
  const a = new Args(node, issues);
  if (spec.block !== undefined) {
    openBlock(spec, a, owner, issues);
    return;
  }
  const parsed = readValue(spec, a);
  if (parsed === undefined) return;
  const earlier = owner.scope.get(spec.name)[0];
  if (earlier !== undefined && DUPLICATE_IS_ERROR.has(spec.value)) {
    issues.error(ErrorCode.ConfigBadValue, node.loc, `${quote(node.name)} directive is duplicate (first set at ${formatLocation(earlier.node.loc)})`);
    return;
  }
  owner.scope.add({ spec, node, parsed });
}

function readTypes(node: ConfigNode, scope: Scope, issues: Issues): void {
  const types = scope.types ?? new Map<string, string>();
  scope.types = types;
  for (const child of node.children ?? []) {
    if (child.children !== undefined) {
      issues.error(ErrorCode.ConfigSyntax, child.loc, `a "types" entry is not a block: ${quote(child.name)}`);
      continue;
    }
    if (child.args.length === 0) {
      issues.error(ErrorCode.ConfigBadValue, child.loc, `"types" entry ${quote(child.name)} lists no file extension`);
      continue;
    }
    for (const ext of child.args) types.set(ext.toLowerCase(), child.name);
  }
}

function openBlock(spec: DirectiveSpec, a: Args, owner: Owner, issues: Issues): void {
  const node = a.node;
  const children = node.children ?? [];
  const kind = spec.block;
  switch (kind) {
    case undefined:
      return;
    case 'rtmp':
    case 'http': {
      if (owner.ctx !== 'main') return;
      if (owner.tree[kind] !== undefined) {
        issues.error(ErrorCode.ConfigBadValue, node.loc, `${quote(kind)} directive is duplicate`);
        return;
      }
      if (kind === 'rtmp') {
        const tree: RtmpTree = { loc: node.loc, scope: new Scope(), servers: [] };
        owner.tree.rtmp = tree;
        walk(children, { ctx: 'rtmp', scope: tree.scope, tree }, issues);
      } else {
        const tree: HttpTree = { loc: node.loc, scope: new Scope(), servers: [] };
        owner.tree.http = tree;
        walk(children, { ctx: 'http', scope: tree.scope, tree }, issues);
      }
      return;
    }
    case 'server': {
      if (owner.ctx !== 'rtmp') return;
      const tree: RtmpServerTree = { loc: node.loc, scope: new Scope(), apps: [] };
      owner.tree.servers.push(tree);
      walk(children, { ctx: 'server', scope: tree.scope, tree }, issues);
      return;
    }
    case 'application': {
      if (spec.name === 'recorder') {
        openRecorder(a, owner, issues);
        return;
      }
      if (owner.ctx !== 'server') return;
      const name = a.at(0);
      if (name === '') {
        a.bad(0, 'an application needs a name');
        return;
      }
      const same = owner.tree.apps.find((x) => x.name === name);
      if (same !== undefined) {
        issues.error(ErrorCode.ConfigBadValue, node.loc, `duplicate application ${quote(name)} (first declared at ${formatLocation(same.loc)})`);
        return;
      }
      const tree: AppTree = { name, loc: node.loc, scope: new Scope(), recorders: [] };
      owner.tree.apps.push(tree);
      walk(children, { ctx: 'application', scope: tree.scope, tree }, issues);
      return;
    }
    case 'http_server': {
      if (owner.ctx !== 'http') return;
      const tree: HttpServerTree = { loc: node.loc, scope: new Scope(), locations: [] };
      owner.tree.servers.push(tree);
      walk(children, { ctx: 'http_server', scope: tree.scope, tree }, issues);
      return;
    }
    case 'location': {
      if (owner.ctx !== 'http_server') return;
      const parsed = readValue(spec, a);
      if (parsed === undefined || parsed.kind !== 'location') return;
      const same = owner.tree.locations.find((x) => x.path === parsed.path && x.exact === parsed.exact);
      if (same !== undefined) {
        issues.error(ErrorCode.ConfigBadValue, node.loc, `duplicate location ${quote(parsed.path)} (first declared at ${formatLocation(same.loc)})`);
        return;
      }
      const tree: LocationTree = { loc: node.loc, path: parsed.path, exact: parsed.exact, scope: new Scope() };
      owner.tree.locations.push(tree);
      walk(children, { ctx: 'location', scope: tree.scope, tree }, issues);
      return;
    }
    case 'events':
      walk(children, { ctx: 'events', scope: new Scope() }, issues);
      return;
    case 'types':
      readTypes(node, owner.scope, issues);
      return;
    case 'raw':
      owner.scope.add({ spec, node, parsed: { kind: 'none' } });
      return;
    default: {
      const never: never = kind;
      throw new Error(`internal: block ${String(never)}`);
    }
  }
}

/** `recorder NAME { ... }` inside an application: its record directives, read over the application's (src/config/record.ts). */
function openRecorder(a: Args, owner: Owner, issues: Issues): void {
  const node = a.node;
  if (owner.ctx !== 'application') return;
  if (owner.tree.isRecorder === true) {
    issues.error(ErrorCode.ConfigBadContext, node.loc, 'a "recorder" block cannot be inside another');
    return;
  }
  const name = a.at(0);
  const tree: AppTree = { name, loc: node.loc, scope: new Scope(), recorders: [], isRecorder: true };
  owner.tree.recorders.push(tree);
  walk(node.children ?? [], { ctx: 'application', scope: tree.scope, tree }, issues);
  for (const e of tree.scope.all) {
    if (!e.spec.name.startsWith('record')) issues.error(ErrorCode.ConfigBadContext, e.node.loc, `directive ${quote(e.spec.name)} is not allowed in a "recorder" block (record directives only)`);
  }
}

/** The record directives of a block, after inheritance, as src/config/record.ts reads them. */
function directiveValues(r: Resolver): DirectiveValues {
  return {
    flag: (name) => r.flag(name),
    int: (name) => r.int(name),
    text: (name) => r.text(name),
    words: (name) => {
      const set = r.entries(name);
      const last = set[set.length - 1];
      return last === undefined ? undefined : last.node.args;
    },
  };
}

// --------------------------------------------------------------- assembly

const DEFAULT_LOC: SourceLocation = { file: '<directive default>', line: 0, col: 0 };

/** The entries a block sees for a directive, after inheritance. */
function effective(spec: DirectiveSpec, scopes: readonly Scope[]): readonly Entry[] {
  switch (spec.inherit) {
    case 'none':
      return scopes[0]?.get(spec.name) ?? [];
    case 'override':
      for (const s of scopes) {
        const e = s.get(spec.name);
        if (e.length > 0) return e;
      }
      return [];
    case 'append':
      return scopes.flatMap((s) => s.get(spec.name));
    default: {
      const never: never = spec.inherit;
      throw new Error(`internal: inheritance ${String(never)}`);
    }
  }
}

/** Values of one block after inheritance, falling back to the table's defaults. */
class Resolver {
  constructor(
    private readonly scopes: readonly Scope[],
    private readonly ctx: ConfigContext,
    private readonly issues: Issues,
  ) {}

  /** the configured entries of `name` (empty when only the default applies) */
  entries(name: string): readonly Entry[] {
    return effective(directiveSpec(name, this.ctx), this.scopes);
  }

  value(name: string): Parsed | undefined {
    const spec = directiveSpec(name, this.ctx);
    const set = effective(spec, this.scopes);
    const last = set[set.length - 1];
    if (last !== undefined) return last.parsed;
    return parseDefault(spec, this.issues);
  }

  flag(name: string): boolean {
    const p = this.value(name);
    return p?.kind === 'flag' ? p.value : false;
  }

  int(name: string): number {
    const p = this.value(name);
    return p?.kind === 'int' ? p.value : 0;
  }

  text(name: string): string | undefined {
    const p = this.value(name);
    return p?.kind === 'text' ? p.value : undefined;
  }
}

/** Reads a directive's default text with the same code as configured values. */
function parseDefault(spec: DirectiveSpec, issues: Issues): Parsed | undefined {
  if (spec.default === undefined) return undefined;
  const args = spec.default.split(/\s+/).filter((w) => w !== '');
  const node: ConfigNode = { name: spec.name, args, argLocs: args.map(() => DEFAULT_LOC), children: undefined, loc: DEFAULT_LOC };
  return readValue(spec, new Args(node, issues));
}

function defaultTypes(issues: Issues): Map<string, string> {
  const spec = directiveSpec('types', 'http');
  const types = new Map<string, string>();
  for (const line of (spec.default ?? '').split(';')) {
    const [mime, ...exts] = line.trim().split(/\s+/);
    if (mime === undefined || mime === '') continue;
    for (const ext of exts) types.set(ext, mime);
  }
  if (types.size === 0) issues.error(ErrorCode.ConfigBadValue, DEFAULT_LOC, 'internal: no default MIME types');
  return types;
}

interface ListenEntry {
  readonly spec: ListenSpec;
  readonly loc: SourceLocation;
}

function listensOf(scope: Scope, soKeepalive: boolean | undefined): ListenEntry[] {
  return scope.get('listen').flatMap((e) => {
    if (e.parsed.kind !== 'listen') return [];
    const spec = e.parsed.keepaliveSet || soKeepalive === undefined ? e.parsed.value : { ...e.parsed.value, soKeepalive };
    return [{ spec, loc: e.node.loc }];
  });
}

function execCommands(scopes: readonly Scope[], staticOnes: boolean): ExecCommand[] {
  return scopes.flatMap((s) => s.all.flatMap((e) => (e.parsed.kind === 'exec' && (e.parsed.value.kind === 'exec_static') === staticOnes ? [e.parsed.value] : [])));
}

function execSettings(r: Resolver, commands: readonly ExecCommand[]): ExecSettings {
  return {
    commands,
    killSignal: r.text('exec_kill_signal') ?? 'SIGKILL',
    respawn: r.flag('respawn'),
    respawnTimeout: r.int('respawn_timeout'),
    options: r.flag('exec_options'),
  };
}

function buildApplication(app: AppTree, srv: RtmpServerTree, rtmp: RtmpTree, issues: Issues): ApplicationConfig {
  const scopes = [app.scope, srv.scope, rtmp.scope];
  const r = new Resolver(scopes, 'application', issues);
  const rs = new Resolver([srv.scope, rtmp.scope], 'server', issues);
  const metaText = r.text('meta');
  const meta: MetaMode = metaText === 'copy' ? 'copy' : metaText === 'off' ? 'off' : 'on';
  const live: LiveSettings = {
    live: r.flag('live'),
    meta,
    interleave: r.flag('interleave'),
    waitKey: r.flag('wait_key'),
    waitVideo: r.flag('wait_video'),
    publishNotify: r.flag('publish_notify'),
    playRestart: r.flag('play_restart'),
    idleStreams: r.flag('idle_streams'),
    dropIdlePublisher: r.int('drop_idle_publisher'),
    sync: r.int('sync'),
    gopCache: r.flag('gop_cache'),
    flushWindow: r.int('flush_window'),
  };
  const access: AccessRule[] = scopes.flatMap((s) => s.all.flatMap((e) => (e.parsed.kind === 'access' ? e.parsed.value : [])));
  const notify: NotifySettings = {
    onConnect: rs.text('on_connect'),
    onDisconnect: rs.text('on_disconnect'),
    onPlay: r.text('on_play'),
    onPublish: r.text('on_publish'),
    onDone: r.text('on_done'),
    onPlayDone: r.text('on_play_done'),
    onPublishDone: r.text('on_publish_done'),
    onRecordStarted: r.text('on_record_started'),
    onRecordDone: r.text('on_record_done'),
    onUpdate: r.text('on_update'),
    updateTimeout: r.int('notify_update_timeout'),
    updateStrict: r.flag('notify_update_strict'),
    relayRedirect: r.flag('notify_relay_redirect'),
    method: r.text('notify_method') === 'get' ? 'GET' : 'POST',
  };
  const targets = (name: string): RelayTarget[] => app.scope.get(name).flatMap((e) => (e.parsed.kind === 'relay' ? [e.parsed.value] : []));
  const directives: Record<string, string[][]> = {};
  for (const name of new Set(scopes.flatMap((s) => s.names()))) {
    const spec = findDirective(name, 'application');
    if (spec === undefined) continue;
    const set = effective(spec, scopes);
    const used = spec.inherit === 'override' && spec.value !== 'header' ? set.slice(-1) : set;
    if (used.length > 0) directives[name] = used.map((e) => [...e.node.args]);
  }
  return {
    name: app.name,
    live,
    access,
    notify,
    exec: execSettings(r, execCommands(scopes, false)),
    relay: {
      push: targets('push'),
      pull: targets('pull'),
      pushReconnect: r.int('push_reconnect'),
      pullReconnect: r.int('pull_reconnect'),
      sessionRelay: r.flag('session_relay'),
    },
    record: readRecordConfig(
      directiveValues(r),
      app.recorders.map((rec) => ({ name: rec.name, values: directiveValues(new Resolver([rec.scope, ...scopes], 'application', issues)) })),
      { error: (m) => issues.error(ErrorCode.ConfigBadValue, app.loc, `application ${quote(app.name)}: ${m}`), warn: (m) => issues.warn(app.loc, `application ${quote(app.name)}: ${m}`) },
    ),
    hls: readHlsSettings(r),
    dash: readDashSettings(r),
    directives,
    ...vodConfig(directives),
  };
}

function buildRtmpServer(srv: RtmpServerTree, rtmp: RtmpTree, issues: Issues, listens: ListenEntry[]): RtmpServerConfig {
  const r = new Resolver([srv.scope, rtmp.scope], 'server', issues);
  const keepaliveSet = r.entries('so_keepalive').length > 0;
  const own = listensOf(srv.scope, keepaliveSet ? r.flag('so_keepalive') : undefined);
  if (own.length === 0) issues.warn(srv.loc, 'rtmp server has no "listen" directive: it accepts no connections');
  listens.push(...own);
  const outQueue = r.int('out_queue');
  const outCork = r.entries('out_cork').length > 0 ? r.int('out_cork') : Math.floor(outQueue / 8);
  return {
    listen: own.map((l) => l.spec),
    chunkSize: r.int('chunk_size'),
    timeout: r.int('timeout'),
    ping: r.int('ping'),
    pingTimeout: r.int('ping_timeout'),
    maxStreams: r.int('max_streams'),
    ackWindow: r.int('ack_window'),
    maxMessage: r.int('max_message'),
    directWrite: r.flag('direct_write'),
    nativeWrite: r.flag('native_write'),
    sharedRead: r.flag('shared_read'),
    readWindow: r.int('read_window'),
    warmup: r.flag('warmup'),
    tcpNodelay: r.flag('tcp_nodelay'),
    maxConnections: r.int('max_connections'),
    realIpFrom: r.entries('set_real_ip_from').flatMap((e) => (e.parsed.kind === 'text' ? [e.parsed.value] : [])),
    outQueue,
    outCork,
    buflen: r.int('buflen'),
    applications: srv.apps.map((a) => buildApplication(a, srv, rtmp, issues)),
  };
}

function buildLocation(loc: LocationTree, srv: HttpServerTree, http: HttpTree, issues: Issues): HttpLocation {
  const scopes = [loc.scope, srv.scope, http.scope];
  const r = new Resolver(scopes, 'location', issues);
  const aliasEntry = loc.scope.get('alias')[0];
  const rootHere = loc.scope.get('root')[0];
  if (aliasEntry !== undefined && rootHere !== undefined) {
    const later = aliasEntry.node.loc.line > rootHere.node.loc.line ? aliasEntry : rootHere;
    issues.error(ErrorCode.ConfigBadValue, later.node.loc, `"root" and "alias" cannot both be set in location ${quote(loc.path)}`);
  }
  const alias = aliasEntry?.parsed.kind === 'text' ? aliasEntry.parsed.value : undefined;
  const typesMap = scopes.find((s) => s.types !== undefined)?.types ?? defaultTypes(issues);
  return {
    path: loc.path,
    exact: loc.exact,
    root: alias === undefined ? r.text('root') : undefined,
    alias,
    rtmpStat: loc.scope.get('rtmp_stat').length > 0,
    rtmpControl: loc.scope.get('rtmp_control').length > 0,
    controlSections: controlSections(loc.scope),
    statSections: statSections(loc.scope),
    access: httpAccess(scopes),
    addHeaders: r.entries('add_header').flatMap((e) => (e.parsed.kind === 'header' ? [e.parsed.value] : [])),
    types: Object.fromEntries(typesMap),
    defaultType: r.text('default_type') ?? 'text/plain',
    rules: locationRules(loc, srv, r, issues),
    ...optionalDelivery(readHttpDelivery((name) => loc.scope.get(name))),
  };
}

/** add_header (with `always`), expires, return and the `if ($request_method …)` blocks of a location (http-rules.ts). */
function locationRules(loc: LocationTree, srv: HttpServerTree, r: Resolver, issues: Issues): HttpRules {
  const err = (at: SourceLocation, message: string): void => issues.error(ErrorCode.ConfigBadValue, at, message);
  for (const name of ['return', 'expires']) {
    const again = loc.scope.get(name)[1];
    if (again !== undefined) err(again.node.loc, `${quote(name)} directive is duplicate`);
  }
  const expires = r.entries('expires');
  return readHttpRules(
    {
      addHeaders: r.entries('add_header').map((e) => e.node),
      ifs: [...srv.scope.get('if'), ...loc.scope.get('if')].map((e) => e.node),
      ret: loc.scope.get('return')[0]?.node,
      expires: expires[expires.length - 1]?.node,
    },
    err,
  );
}

function optionalDelivery(d: HttpDelivery | undefined): { delivery?: HttpDelivery } {
  return d === undefined ? {} : { delivery: d };
}

const CONTROL_SECTIONS: readonly ControlSection[] = ['drop', 'record', 'redirect'];

/** The sections `rtmp_control` lines name (`all` = every one), in table order. */
function controlSections(scope: Scope): ControlSection[] {
  const named = new Set(scope.get('rtmp_control').flatMap((e) => (e.parsed.kind === 'modes' ? e.parsed.value : [])));
  return CONTROL_SECTIONS.filter((c) => named.has('all') || named.has(c));
}

const STAT_SECTIONS: readonly StatSection[] = ['live', 'clients'];

/** What `rtmp_stat` lines name (`all` = every one; `global` and `record` add nothing: the global counters are always shown). */
function statSections(scope: Scope): StatSection[] {
  const named = new Set(scope.get('rtmp_stat').flatMap((e) => (e.parsed.kind === 'modes' ? e.parsed.value : [])));
  return STAT_SECTIONS.filter((c) => named.has('all') || named.has(c));
}

/** nginx's merge of allow/deny: the innermost block that has any such line keeps its own, in order; the outer ones are not added. */
function httpAccess(scopes: readonly Scope[]): HttpAccessRule[] {
  for (const s of scopes) {
    const rules = s.all.flatMap((e) => (e.parsed.kind === 'http_access' ? [e.parsed.value] : []));
    if (rules.length > 0) return rules;
  }
  return [];
}

function buildHttpServer(srv: HttpServerTree, http: HttpTree, issues: Issues, listens: ListenEntry[]): HttpServerConfig {
  let own = listensOf(srv.scope, undefined);
  if (own.length === 0) {
    const dflt = parseDefault(directiveSpec('listen', 'http_server'), issues);
    issues.warn(srv.loc, 'http server has no "listen" directive: listening on *:80 (the nginx default)');
    own = dflt?.kind === 'listen' ? [{ spec: dflt.value, loc: srv.loc }] : [];
  }
  listens.push(...own);
  const r = new Resolver([srv.scope, http.scope], 'http_server', issues);
  return {
    listen: own.map((l) => l.spec),
    locations: srv.locations.map((l) => buildLocation(l, srv, http, issues)),
    access: httpAccess([srv.scope, http.scope]),
    headerTimeout: r.int('client_header_timeout'),
    sendTimeout: r.int('send_timeout'),
    maxConnections: new Resolver([http.scope], 'http', issues).int('max_connections'),
  };
}

function checkListenDuplicates(listens: readonly ListenEntry[], issues: Issues): void {
  const seen = new Map<string, SourceLocation>();
  for (const l of listens) {
    if (l.spec.port === 0) continue;
    const key = `${l.spec.host}|${l.spec.port}`;
    const first = seen.get(key);
    const shown = isIPv6(l.spec.host) ? `[${l.spec.host}]:${l.spec.port}` : `${l.spec.host}:${l.spec.port}`;
    if (first !== undefined) issues.error(ErrorCode.ConfigBadValue, l.loc, `duplicate listen address ${shown} (already used at ${formatLocation(first)})`);
    else seen.set(key, l.loc);
  }
}

/** Freezes an object graph in place (objects and arrays, recursively). */
export function deepFreeze<T>(value: T, seen: WeakSet<object> = new WeakSet()): T {
  if (value !== null && typeof value === 'object' && !seen.has(value)) {
    seen.add(value);
    for (const v of Object.values(value)) deepFreeze<unknown>(v, seen);
    Object.freeze(value);
  }
  return value;
}

/** One ServerError for a list of errors: the first's code, one `FILE:LINE:COL: message` per line, the list as cause. */
export function combineErrors(errors: readonly ServerError[]): ServerError {
  const [first] = errors;
  if (first === undefined) return serverError(ErrorCode.ConfigSyntax, 'invalid configuration');
  if (errors.length === 1) return first;
  return serverError(first.code, errors.map((e) => e.message).join('\n'), errors);
}

/**
 * Reads configuration text (nginx-rtmp syntax) that came from `file` (used in
 * messages and to resolve relative includes). Throws one ServerError listing
 * every error found.
 */
export function parseConfigText(text: string, file: string, opts: LoadOptions = {}): ServerConfig {
  const parsed = parseConfigTree(text, file, opts);
  if (parsed.errors.length > 0) throw combineErrors(parsed.errors);
  const issues = new Issues();
  issues.warnings.push(...(parsed.warnings ?? []));
  const main: MainTree = { scope: new Scope(), rtmp: undefined, http: undefined };
  walk(parsed.nodes, { ctx: 'main', scope: main.scope, tree: main }, issues);

  const listens: ListenEntry[] = [];
  const rtmpTree = main.rtmp;
  const rtmp = rtmpTree === undefined ? [] : rtmpTree.servers.map((s) => buildRtmpServer(s, rtmpTree, issues, listens));
  if (rtmpTree === undefined) issues.warn({ file, line: 1, col: 1 }, 'no "rtmp" block: no RTMP server will run');
  else if (rtmpTree.servers.length === 0) issues.warn(rtmpTree.loc, '"rtmp" block has no "server": no RTMP server will run');
  const httpTree = main.http;
  const http = httpTree === undefined ? [] : httpTree.servers.map((s) => buildHttpServer(s, httpTree, issues, listens));
  checkListenDuplicates(listens, issues);

  const logEntries = main.scope.get('error_log');
  if (logEntries.length > 1) issues.warn(logEntries[logEntries.length - 1]?.node.loc ?? DEFAULT_LOC, 'several "error_log" directives: only the last one is used');
  const logParsed = new Resolver([main.scope], 'main', issues).value('error_log');
  const log: LogSettings = logParsed?.kind === 'log' ? logParsed.value : { destination: 'stderr', level: 'info' };

  const rtmpScopes = rtmpTree === undefined ? [] : [rtmpTree.scope, ...rtmpTree.servers.flatMap((s) => [s.scope, ...s.apps.map((a) => a.scope)])];
  const execStatic = execSettings(new Resolver(rtmpTree === undefined ? [] : [rtmpTree.scope], 'rtmp', issues), execCommands(rtmpScopes, true));

  if (issues.errors.length > 0) throw combineErrors(issues.errors);
  const config: ServerConfig = { source: file, rtmp, http, log, warnings: issues.warnings, execStatic };
  return deepFreeze(config);
}

/** Reads and checks a configuration file (includes resolved from its directory). */
export function loadConfigFile(path: string, opts: LoadOptions = {}): ServerConfig {
  const read = opts.readFile ?? ((p: string) => readFileSync(p, 'utf8'));
  let text: string;
  try {
    text = read(path);
  } catch (e) {
    const code = e instanceof Error ? (e as Error & { code?: unknown }).code : undefined;
    throw serverError(ErrorCode.ConfigInclude, `${path}: cannot read the configuration file (${typeof code === 'string' ? code : describeError(e).message})`, e);
  }
  return parseConfigText(text, path, opts);
}
