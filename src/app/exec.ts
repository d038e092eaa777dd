import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { constants as osConstants } from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { ErrorCode, describeError, serverError } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import type { ApplicationConfig, ExecCommand, ExecSettings } from '../config/types.js';
import type { LiveStream } from '../live/stream.js';
import { normalizeAddress } from './access.js';
import type { AppModule, ModuleDeps, Next, PlayContext, PublishContext, RecordEvent, SessionInfo } from './chain.js';
import { SessionKey, dropSessionState, sessionState } from './session-state.js';

/**
 * nginx-rtmp's exec module: external programs run on stream events.
 *
 * Managed children (killed with `exec_kill_signal`, default SIGKILL, and
 * restarted after `respawn_timeout`, default 5 s, when they exit on their own
 * while still wanted, if `respawn on`, the default):
 * - `exec` / `exec_push`: one child per command per published stream, from
 *   the `published` hook until `publishDone`.
 * - `exec_pull`: one child per command per played stream *name* (shared by
 *   every player of that name, as nginx-rtmp counts players per name). It is
 *   started when a player arrives and the stream has no publisher (nginx-rtmp
 *   starts it on the first player even when the stream is already published;
 *   we skip that case, where the pulled program could only fail with "stream
 *   busy"), and killed when the last player of that name leaves.
 * - `exec_static`: started when the module is built, killed on `close()`. As
 *   in nginx-rtmp, statics always respawn (the `respawn` flag does not apply)
 *   and get no variables. The config loader keeps exec_static lines in one
 *   global list (ServerConfig.execStatic): run those with `startExecStatic`.
 *
 * Unmanaged children (run once, never respawned; still killed on `close()` so
 * none outlives the server): `exec_publish` (when the stream is live),
 * `exec_publish_done`, `exec_play` (after the rest of the chain accepted the
 * play), `exec_play_done`, and `exec_record_started` / `exec_record_done`,
 * which the recorder triggers through `ExecModule.recordStarted/recordDone`.
 *
 * A play refused by a later module or by the live step never reaches this
 * module's work (it runs after next()); a session that disconnects without
 * its done-events gets them from `disconnect`, so pulls never leak.
 *
 * Bounds (ExecLimits): at most EXEC_MAX_CHILDREN (256) exec children run in
 * the process, and at most EXEC_MAX_SESSION_CHILDREN (8) run-once children
 * for one connection at a time; beyond them a command is not started (one
 * warning), a managed one retries after respawn_timeout. exec_pull runs for
 * at most EXEC_MAX_PULLS (32) stream names per application, at most
 * EXEC_MAX_SESSION_PULLS (4) of them started by one connection's plays;
 * beyond that the player waits without one (one warning per connection).
 *
 * Command lines: argv[0] is the program, looked up on PATH (execvp-like, no
 * shell); it is never expanded. Each argument expands `$var` (letters only)
 * and `${var}`; `\c` gives a literal `c` (as nginx-rtmp's evaluator). Unknown
 * variables stay as written (nginx-rtmp makes them empty). Variables:
 * - exec/exec_push and the event commands: name, args (the stream's query
 *   string), app, addr (client IP), flashver, swfurl, tcurl, pageurl;
 *   record events add path, recorder, filename, basename, dirname;
 * - exec_pull: name and app only (the child is shared by many clients);
 * - exec_static: none.
 * Values are data: no shell ever sees them. Options: a command whose argument
 * would start with a variable's value beginning with `-` (a stream named
 * `-version`, `$args` = `-y`) is not run at all (one warning; a managed one
 * is not respawned), unless a configured `--` argument comes before it.
 * nginx-rtmp passes such values on, so the program reads them as options.
 *
 * Shell-style redirects, as nginx-rtmp: an argument `>file`, `>>file`,
 * `<file`, `N>file`, `N>&M`... Unlike nginx-rtmp, an argument is a redirect
 * only if the configured text is one (not after expansion: a client's `$args`
 * can never become `>/some/file`); the file path itself is expanded, each
 * client value (name, args, app, addr, flashver, swfurl, tcurl, pageurl)
 * percent-encoded except for letters, digits and `_ . ~ @ + = , : -` (and a
 * value of only dots encoded whole), so `cam?../x` gives `..%2Fx`; the result
 * must stay inside the directory the configured text names before the first
 * client value (see redirectFile). A redirect refused so, or that fails (file
 * cannot be opened), is logged and dropped: the descriptor goes to /dev/null.
 *
 * Output: stdin and stdout go to /dev/null unless redirected; stderr is read
 * (never left to fill up) and logged line by line at debug level, the last
 * line repeated in the exit log. (`exec_options on` enables `name=NAME`
 * filters on command lines, as in nginx-rtmp: the command runs only for those
 * stream names.)
 *
 * Stopping: a managed child that ignores a stop signal other than SIGKILL is
 * SIGKILLed after EXEC_STOP_GRACE_MS (nginx-rtmp would forget it). `close()`
 * signals every child, waits up to EXEC_CLOSE_GRACE_MS, SIGKILLs the rest and
 * waits (bounded) for them. While children run, a `process` 'exit' listener
 * SIGKILLs them if the server process exits without closing. Gap: a server
 * killed by SIGKILL leaves them (nginx-rtmp uses prctl(PR_SET_PDEATHSIG) on
 * Linux, which Node.js cannot set).
 */

export type ExecKind = ExecCommand['kind'];

/** a stop signal other than SIGKILL is followed by SIGKILL after this long */
export const EXEC_STOP_GRACE_MS = 5000;
/** close(): time children get to exit after the kill signal before SIGKILL */
export const EXEC_CLOSE_GRACE_MS = 2000;
/** close(): how long to wait for SIGKILLed children to be reaped */
const EXEC_REAP_WAIT_MS = 1000;
/** `respawn_timeout 0`: still wait this long, so a failing command cannot spin */
const MIN_RESPAWN_MS = 100;
const MAX_REDIRECT_FD = 63;
const MAX_LOG_LINE = 1000;

export type ExecVariables = Readonly<Record<string, string>>;

// ------------------------------------------------------------- variables

function isLetter(c: string | undefined): boolean {
  return c !== undefined && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'));
}

/** One piece of an expanded argument: configured text, or the value of `variable`. */
interface Segment {
  readonly text: string;
  readonly variable: string | undefined;
}

/** Expands `$var` / `${var}` into pieces; `\c` is a literal `c`. Unknown variables stay as written (literal text). */
function expandSegments(text: string, vars: ExecVariables): Segment[] {
  const out: Segment[] = [];
  let literal = '';
  const lookup = (name: string): string | undefined => (Object.prototype.hasOwnProperty.call(vars, name) ? vars[name] : undefined);
  const value = (name: string, raw: string): void => {
    const v = lookup(name);
    if (v === undefined) {
      literal += raw;
      return;
    }
    if (literal !== '') out.push({ text: literal, variable: undefined });
    literal = '';
    out.push({ text: v, variable: name });
  };
  let i = 0;
  while (i < text.length) {
    const c = text[i]!;
    if (c === '\\' && i + 1 < text.length) {
      literal += text[i + 1]!;
      i += 2;
    } else if (c === '$' && text[i + 1] === '{') {
      const end = text.indexOf('}', i + 2);
      if (end < 0) {
        literal += text.slice(i);
        break;
      }
      value(text.slice(i + 2, end), text.slice(i, end + 1));
      i = end + 1;
    } else if (c === '$' && isLetter(text[i + 1])) {
      let j = i + 1;
      while (isLetter(text[j])) j++;
      value(text.slice(i + 1, j), text.slice(i, j));
      i = j;
    } else {
      literal += c;
      i++;
    }
  }
  if (literal !== '') out.push({ text: literal, variable: undefined });
  return out;
}

/**
 * Expands `$var` / `${var}` in one argument; `\c` is a literal `c`. Unknown
 * variables stay as written.
 */
export function expandExecArg(text: string, vars: ExecVariables): string {
  return expandSegments(text, vars)
    .map((s) => s.text)
    .join('');
}

/**
 * Variables whose value a client chooses (directly, or as the connect command's
 * app/tcUrl/flashVer/...; addr is the peer's address, listed to be safe). The
 * record variables (path, dirname...) are built by the server under its
 * configured record path.
 */
const CLIENT_VARIABLES: ReadonlySet<string> = new Set(['name', 'args', 'app', 'addr', 'flashver', 'swfurl', 'tcurl', 'pageurl']);

/** bytes a client value keeps as they are in a redirect path; every other byte becomes %XX */
const PATH_SAFE_BYTE = /^[A-Za-z0-9_.~@+=,:-]$/;
/** the longest file name component (NAME_MAX on Linux and most file systems) */
const MAX_PATH_COMPONENT = 255;

/**
 * A client value as a piece of a redirect path: every byte outside
 * PATH_SAFE_BYTE (so `/`, `\`, `%`, NUL and control bytes, spaces...) is
 * percent-encoded, and a value of only dots (`.`, `..`) is encoded whole, so a
 * value can never add or climb a path component.
 */
export function encodeRedirectValue(value: string): string {
  let out = '';
  for (const b of Buffer.from(value, 'utf8')) {
    const c = String.fromCharCode(b);
    out += PATH_SAFE_BYTE.test(c) ? c : `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return /^\.+$/.test(out) ? out.replace(/\./g, '%2E') : out;
}

/**
 * The file a redirect template names for these variables: client values
 * encoded (encodeRedirectValue), then the resolved path must stay strictly
 * inside the directory the configured text names before the first client
 * variable (`>/var/log/exec/$name.log`: /var/log/exec; relative: the server's
 * working directory), and no component may be longer than NAME_MAX. Returns
 * the absolute path, or why the redirect is refused.
 */
export function redirectFile(template: string, vars: ExecVariables): { readonly file: string } | { readonly refused: string } {
  let out = '';
  let fixed: string | undefined;
  for (const seg of expandSegments(template, vars)) {
    if (seg.variable === undefined || !CLIENT_VARIABLES.has(seg.variable)) {
      out += seg.text;
      continue;
    }
    fixed ??= out;
    out += encodeRedirectValue(seg.text);
  }
  const file = path.resolve(out);
  if (fixed === undefined) return { file };
  const dir = path.resolve(fixed.slice(0, fixed.lastIndexOf('/') + 1) || '.');
  const inside = dir.endsWith(path.sep) ? dir : `${dir}${path.sep}`;
  if (!file.startsWith(inside) || file.length === inside.length) return { refused: `the path leaves ${dir}` };
  if (file.slice(inside.length).split(path.sep).some((c) => Buffer.byteLength(c) > MAX_PATH_COMPONENT)) return { refused: 'a path component is too long' };
  return { file };
}

/**
 * Why an argument may not be passed: a variable's value starts it (nothing
 * configured before it) with `-`, so the program would read the client's text
 * as an option (`-version`, `--output=...`). Arguments after a configured `--`
 * are exempt (the usual end of options). Undefined: the argument is fine.
 */
function optionLike(segments: readonly Segment[]): string | undefined {
  const first = segments.find((s) => s.text !== '');
  if (first?.variable === undefined || !first.text.startsWith('-')) return undefined;
  return `$${first.variable} would start an argument with "-"`;
}

function sessionVars(s: SessionInfo): Record<string, string> {
  return {
    app: s.app,
    addr: normalizeAddress(s.remoteAddress).address,
    flashver: s.flashVer,
    swfurl: s.swfUrl,
    tcurl: s.tcUrl,
    pageurl: s.pageUrl,
  };
}

/** What the recorder passes for exec_record_started / exec_record_done (declared with the chain's events). */
export type { RecordEvent } from './chain.js';

function recordVars(ev: RecordEvent): Record<string, string> {
  const filename = path.basename(ev.path);
  const ext = path.extname(filename);
  return {
    ...sessionVars(ev.session),
    name: ev.name,
    args: ev.query,
    recorder: ev.recorder,
    path: ev.path,
    filename,
    basename: ext === '' ? filename : filename.slice(0, -ext.length),
    dirname: path.dirname(ev.path),
  };
}

// ---------------------------------------------------------------- signals

/** `kill`, `TERM`, `sigusr1`, `9` → a Node.js signal name; throws ERR_CONFIG_BAD_VALUE. */
export function parseKillSignal(text: string): NodeJS.Signals {
  const signals = osConstants.signals as Readonly<Record<string, number>>;
  const t = text.trim();
  if (/^\d+$/.test(t)) {
    const n = Number(t);
    const hit = Object.entries(signals).find(([, v]) => v === n);
    if (hit !== undefined) return hit[0] as NodeJS.Signals;
  } else {
    const name = `SIG${t.toUpperCase().replace(/^SIG/, '')}`;
    if (Object.prototype.hasOwnProperty.call(signals, name)) return name as NodeJS.Signals;
  }
  throw serverError(ErrorCode.ConfigBadValue, `exec_kill_signal: unknown signal ${JSON.stringify(text)}`);
}

// --------------------------------------------------------- command lines

type ArgTemplate =
  | { readonly type: 'arg'; readonly text: string }
  | { readonly type: 'file'; readonly fd: number; readonly flags: 'w' | 'a' | 'r'; readonly path: string; readonly raw: string }
  | { readonly type: 'dup'; readonly fd: number; readonly from: number; readonly raw: string };

interface PreparedCommand {
  readonly kind: ExecKind;
  readonly program: string;
  readonly args: readonly ArgTemplate[];
  /** `name=` filters (exec_options on); empty = every stream */
  readonly names: readonly string[];
  /** the command as configured, for logs */
  readonly text: string;
}

/** A redirect as nginx-rtmp reads one; undefined = an ordinary argument. */
function parseRedirect(raw: string): ArgTemplate | undefined {
  const m = /^(\d*)(>>|>|<)(.*)$/s.exec(raw);
  if (m === null) return undefined;
  const [, digits = '', op = '', rest = ''] = m;
  const fd = digits === '' ? (op === '<' ? 0 : 1) : Number(digits);
  if (fd > MAX_REDIRECT_FD) throw serverError(ErrorCode.ConfigBadValue, `exec: redirect ${JSON.stringify(raw)}: descriptor above ${MAX_REDIRECT_FD}`);
  if (rest.startsWith('&')) {
    const from = rest.slice(1);
    if (!/^\d+$/.test(from) || Number(from) > MAX_REDIRECT_FD) throw serverError(ErrorCode.ConfigBadValue, `exec: bad redirect ${JSON.stringify(raw)}`);
    return { type: 'dup', fd, from: Number(from), raw };
  }
  if (rest === '') throw serverError(ErrorCode.ConfigBadValue, `exec: redirect ${JSON.stringify(raw)} has no file`);
  return { type: 'file', fd, flags: op === '>>' ? 'a' : op === '<' ? 'r' : 'w', path: rest, raw };
}

function prepareCommand(cmd: ExecCommand, options: boolean): PreparedCommand {
  const [program, ...rest] = cmd.argv;
  if (program === undefined || program === '') throw serverError(ErrorCode.ConfigBadValue, `${cmd.kind}: no program given`);
  const names: string[] = [];
  const args: ArgTemplate[] = [];
  for (const raw of rest) {
    if (options && raw.startsWith('name=')) {
      names.push(raw.slice(5));
      continue;
    }
    args.push(parseRedirect(raw) ?? { type: 'arg', text: raw });
  }
  return { kind: cmd.kind, program, args, names, text: cmd.argv.join(' ') };
}

function appliesTo(cmd: PreparedCommand, name: string): boolean {
  return cmd.names.length === 0 || cmd.names.includes(name);
}

type StdioSlot = 'ignore' | 'pipe' | number;

interface ResolvedCommand {
  readonly argv: readonly string[];
  readonly stdio: StdioSlot[];
  /** descriptors opened for redirects: closed once the child has them */
  readonly opened: number[];
}

/**
 * Expands the arguments and opens redirect files (in order, like a shell).
 * Refused (nothing opened) when a variable would start an argument with `-`.
 */
function resolveCommand(cmd: PreparedCommand, vars: ExecVariables, log: Logger): ResolvedCommand | { readonly refused: string } {
  const argv: string[] = [cmd.program];
  let options = true;
  for (const a of cmd.args) {
    if (a.type !== 'arg') continue;
    const segments = expandSegments(a.text, vars);
    const why = options ? optionLike(segments) : undefined;
    if (why !== undefined) return { refused: `argument ${argv.length}: ${why}` };
    if (a.text === '--') options = false;
    argv.push(segments.map((x) => x.text).join(''));
  }
  const stdio: StdioSlot[] = ['ignore', 'ignore', 'pipe'];
  const opened: number[] = [];
  for (const a of cmd.args) {
    if (a.type === 'arg') continue;
    while (stdio.length <= a.fd) stdio.push('ignore');
    if (a.type === 'dup') {
      const from = stdio[a.from];
      if (from === undefined) {
        log.warn({ kind: cmd.kind, redirect: a.raw }, 'exec: redirect from a closed descriptor, ignored');
        continue;
      }
      stdio[a.fd] = from;
      continue;
    }
    const target = redirectFile(a.path, vars);
    if ('refused' in target) {
      log.warn({ kind: cmd.kind, redirect: a.raw, why: target.refused }, 'exec: redirect refused (a client value), ignored');
      continue;
    }
    const file = target.file;
    try {
      const fd = openSync(file, a.flags);
      opened.push(fd);
      stdio[a.fd] = fd;
    } catch (e) {
      log.warn({ kind: cmd.kind, redirect: a.raw, file, err: describeError(e).message }, 'exec: cannot open redirect file, ignored');
    }
  }
  // a pipe is only read on stdout/stderr
  for (let i = 3; i < stdio.length; i++) if (stdio[i] === 'pipe') stdio[i] = 'ignore';
  if (stdio[0] === 'pipe') stdio[0] = 'ignore';
  return { argv, stdio, opened };
}

// --------------------------------------------------------------- children

interface Child {
  readonly proc: ChildProcess;
  readonly pid: number;
  readonly kind: ExecKind;
  readonly log: Logger;
  readonly exited: Promise<void>;
  done: boolean;
  killTimer: NodeJS.Timeout | undefined;
}

/** `refused`: the command was not started on purpose (a client value would be an option): do not retry */
type ExitListener = (code: number | null, signal: NodeJS.Signals | null, refused?: boolean) => void;

/**
 * Bounds on children (issue 13: a client playing 30 times must not start 30
 * programs). `maxChildren` counts every running exec child of the process
 * (all applications); `maxSessionChildren` counts the run-once children
 * (exec_play, exec_play_done, exec_publish, exec_publish_done, exec_record_*)
 * started for one connection and still running. A command beyond a bound is
 * not started (one warning per episode); a managed one retries after
 * respawn_timeout.
 */
export interface ExecLimits {
  /** default EXEC_MAX_CHILDREN */
  readonly maxChildren?: number;
  /** default EXEC_MAX_SESSION_CHILDREN */
  readonly maxSessionChildren?: number;
  /** stream names one application runs exec_pull commands for at once (default EXEC_MAX_PULLS) */
  readonly maxPulls?: number;
  /** of those, started by one connection's plays (default EXEC_MAX_SESSION_PULLS) */
  readonly maxSessionPulls?: number;
}

export const EXEC_MAX_CHILDREN = 256;
export const EXEC_MAX_SESSION_CHILDREN = 8;
export const EXEC_MAX_PULLS = 32;
export const EXEC_MAX_SESSION_PULLS = 4;

/** exec children running in this process, every module together */
let runningChildren = 0;

export function execChildrenRunning(): number {
  return runningChildren;
}

/** Reads a child's output so its pipe never fills; logs lines at debug. */
function drain(stream: Readable | null, onLine: (line: string) => void): void {
  if (stream === null) return;
  let partial = '';
  stream.setEncoding('utf8');
  stream.on('data', (chunk: string) => {
    const parts = (partial + chunk).split(/\r\n|\r|\n/);
    partial = parts.pop() ?? '';
    if (partial.length > MAX_LOG_LINE) {
      parts.push(partial);
      partial = '';
    }
    for (const p of parts) if (p.trim() !== '') onLine(p.length > MAX_LOG_LINE ? `${p.slice(0, MAX_LOG_LINE)}…` : p);
  });
  stream.on('end', () => {
    if (partial.trim() !== '') onLine(partial.slice(0, MAX_LOG_LINE));
    partial = '';
  });
  stream.on('error', () => undefined);
}

/**
 * Every child one module instance started: spawning, signalling, the
 * process-exit safety net, and the bounded shutdown.
 */
class ChildSet {
  private readonly live = new Set<Child>();
  /** a connection's running run-once children of this set, and whether it was told it reached maxSessionChildren */
  private readonly ownerKey = new SessionKey('exec', () => ({ running: 0, warned: false }));
  private readonly timers = new Set<NodeJS.Timeout>();
  private closing: Promise<void> | undefined;
  private capWarned = false;

  constructor(
    private readonly maxChildren: number = EXEC_MAX_CHILDREN,
    private readonly maxSessionChildren: number = EXEC_MAX_SESSION_CHILDREN,
  ) {}
  private readonly onProcessExit = (): void => {
    for (const c of this.live) {
      try {
        c.proc.kill('SIGKILL');
      } catch {
        // already gone
      }
    }
  };

  get closed(): boolean {
    return this.closing !== undefined;
  }

  pids(): number[] {
    return [...this.live].filter((c) => !c.done).map((c) => c.pid);
  }

  /**
   * Starts a command. `onExit` runs once, asynchronously, when the child exits
   * or could not be started (then code and signal are null). Returns undefined
   * when nothing was started. `owner`: the connection a run-once command runs
   * for (counted against maxSessionChildren; onExit is not called when that
   * bound refuses it).
   */
  spawn(cmd: PreparedCommand, vars: ExecVariables, log: Logger, onExit: ExitListener, owner?: SessionInfo): Child | undefined {
    if (this.closed) return undefined;
    if (runningChildren >= this.maxChildren) {
      if (!this.capWarned) log.warn({ kind: cmd.kind, running: runningChildren, max: this.maxChildren }, 'exec: too many children running, command not started');
      this.capWarned = true;
      setImmediate(() => onExit(null, null));
      return undefined;
    }
    const mine = owner === undefined ? undefined : sessionState(owner, this.ownerKey);
    if (mine !== undefined && mine.running >= this.maxSessionChildren) {
      if (!mine.warned) log.warn({ kind: cmd.kind, max: this.maxSessionChildren }, 'exec: this connection runs too many children, command not started');
      mine.warned = true;
      return undefined;
    }
    const resolved = resolveCommand(cmd, vars, log);
    if ('refused' in resolved) {
      log.warn({ kind: cmd.kind, cmd: cmd.text, why: resolved.refused }, 'exec: command refused (a client value), not started');
      setImmediate(() => onExit(null, null, true));
      return undefined;
    }
    const { argv, stdio, opened } = resolved;
    const [program, ...args] = argv;
    let proc: ChildProcess;
    try {
      proc = spawn(program!, args, { stdio: stdio as StdioOptions, detached: false, windowsHide: true });
    } catch (e) {
      log.warn({ kind: cmd.kind, cmd: argv, err: describeError(e).message }, 'exec: cannot start child');
      setImmediate(() => onExit(null, null));
      return undefined;
    } finally {
      for (const fd of opened) {
        try {
          closeSync(fd);
        } catch {
          // nothing to do
        }
      }
    }
    let lastLine = '';
    const onLine = (line: string): void => {
      lastLine = line;
      log.debug({ kind: cmd.kind, pid: proc.pid, line }, 'exec: child output');
    };
    drain(proc.stdout, onLine);
    drain(proc.stderr, onLine);
    const pid = proc.pid;
    if (pid === undefined) {
      // spawn failed (ENOENT, EACCES...): Node reports it on 'error'
      let reported = false;
      proc.on('error', (e) => {
        log.warn({ kind: cmd.kind, cmd: argv, err: e.message }, 'exec: cannot start child');
        if (!reported) onExit(null, null);
        reported = true;
      });
      return undefined;
    }
    let resolveExited = (): void => undefined;
    const child: Child = {
      proc,
      pid,
      kind: cmd.kind,
      log,
      exited: new Promise<void>((r) => (resolveExited = r)),
      done: false,
      killTimer: undefined,
    };
    if (this.live.size === 0) process.once('exit', this.onProcessExit);
    this.live.add(child);
    runningChildren++;
    this.capWarned = false;
    if (mine !== undefined) mine.running++;
    log.info({ kind: cmd.kind, pid, cmd: argv }, 'exec: child started');
    proc.on('error', (e) => log.warn({ kind: cmd.kind, pid, err: e.message }, 'exec: child error'));
    proc.once('exit', (code, signal) => {
      child.done = true;
      if (child.killTimer !== undefined) clearTimeout(child.killTimer);
      this.live.delete(child);
      runningChildren--;
      if (mine !== undefined) mine.running--;
      if (this.live.size === 0) process.off('exit', this.onProcessExit);
      const fields: Record<string, unknown> = { kind: cmd.kind, pid, code, signal };
      if (code !== 0 && lastLine !== '') fields['lastLine'] = lastLine;
      log.info(fields, 'exec: child exited');
      resolveExited();
      onExit(code, signal);
    });
    return child;
  }

  /** The connection closed: forget its warning (its running children still count until they exit). */
  forget(owner: SessionInfo): void {
    dropSessionState(owner, this.ownerKey);
  }

  /** Sends the stop signal; anything but SIGKILL is followed by SIGKILL after graceMs (0 = never). */
  kill(child: Child, signal: NodeJS.Signals, graceMs: number): void {
    if (child.done) return;
    child.log.info({ kind: child.kind, pid: child.pid, signal }, 'exec: killing child');
    this.signal(child, signal);
    if (signal !== 'SIGKILL' && graceMs > 0 && child.killTimer === undefined) {
      child.killTimer = setTimeout(() => {
        child.killTimer = undefined;
        if (child.done) return;
        child.log.warn({ kind: child.kind, pid: child.pid, signal: 'SIGKILL' }, 'exec: child ignored the stop signal, killing');
        this.signal(child, 'SIGKILL');
      }, graceMs);
      child.killTimer.unref();
    }
  }

  private signal(child: Child, signal: NodeJS.Signals): void {
    try {
      child.proc.kill(signal);
    } catch (e) {
      child.log.warn({ kind: child.kind, pid: child.pid, signal, err: describeError(e).message }, 'exec: kill failed');
    }
  }

  /** A timer that close() cancels; none is set once closed. */
  after(ms: number, f: () => void): NodeJS.Timeout | undefined {
    if (this.closed) return undefined;
    const t = setTimeout(() => {
      this.timers.delete(t);
      f();
    }, ms);
    this.timers.add(t);
    return t;
  }

  cancel(t: NodeJS.Timeout | undefined): void {
    if (t === undefined) return;
    clearTimeout(t);
    this.timers.delete(t);
  }

  /** Kills every child (signal, then SIGKILL after the grace) and waits, bounded, for them to exit. */
  close(signal: NodeJS.Signals, log: Logger): Promise<void> {
    this.closing ??= (async () => {
      for (const t of this.timers) clearTimeout(t);
      this.timers.clear();
      const all = [...this.live];
      if (all.length === 0) return;
      for (const c of all) this.kill(c, signal, 0);
      const allExited = Promise.all(all.map((c) => c.exited));
      if (signal !== 'SIGKILL') await waitBounded(allExited, EXEC_CLOSE_GRACE_MS);
      const stubborn = all.filter((c) => !c.done);
      for (const c of stubborn) this.kill(c, 'SIGKILL', 0);
      await waitBounded(allExited, EXEC_REAP_WAIT_MS);
      const left = all.filter((c) => !c.done);
      if (left.length > 0) log.error({ pids: left.map((c) => c.pid) }, 'exec: children still running after close');
      for (const c of all) {
        c.proc.stdout?.destroy();
        c.proc.stderr?.destroy();
      }
      process.off('exit', this.onProcessExit);
    })();
    return this.closing;
  }
}

async function waitBounded(p: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([p, new Promise<void>((r) => (timer = setTimeout(r, ms)))]);
  clearTimeout(timer);
}

/** One managed command: its current child and its respawn timer. */
class ManagedJob {
  private child: Child | undefined;
  private respawnTimer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(
    private readonly children: ChildSet,
    private readonly cmd: PreparedCommand,
    private readonly vars: ExecVariables,
    private readonly log: Logger,
    /** undefined = no respawn */
    private readonly respawnMs: number | undefined,
    private readonly killSignal: NodeJS.Signals,
  ) {}

  start(): void {
    if (this.stopped) return;
    this.child = this.children.spawn(this.cmd, this.vars, this.log, (code, signal, refused) => this.exited(code, signal, refused === true));
  }

  /** No more respawns; the running child gets the kill signal unless `kill` is false (close() kills it). */
  stop(kill = true): void {
    if (this.stopped) return;
    this.stopped = true;
    this.children.cancel(this.respawnTimer);
    this.respawnTimer = undefined;
    if (kill && this.child !== undefined) this.children.kill(this.child, this.killSignal, EXEC_STOP_GRACE_MS);
  }

  private exited(code: number | null, signal: NodeJS.Signals | null, refused: boolean): void {
    this.child = undefined;
    // a refused command line stays refused: the values that made it so do not change
    if (this.stopped || this.children.closed || refused) return;
    if (this.respawnMs === undefined) {
      this.log.info({ kind: this.cmd.kind, code, signal }, 'exec: child exited, respawn off');
      return;
    }
    const delay = Math.max(this.respawnMs, MIN_RESPAWN_MS);
    this.log.info({ kind: this.cmd.kind, delay }, 'exec: respawning child');
    this.respawnTimer = this.children.after(delay, () => {
      this.respawnTimer = undefined;
      this.start();
    });
  }
}

// ----------------------------------------------------------------- module

export interface ExecModule extends AppModule {
  /** the recorder opened a file: runs exec_record_started */
  recordStarted(ev: RecordEvent): void;
  /** the recorder closed a file: runs exec_record_done */
  recordDone(ev: RecordEvent): void;
  /** pids of the running children (tests, statistics) */
  pids(): number[];
}

interface PublishEntry {
  readonly sessionId: string;
  readonly jobs: readonly ManagedJob[];
}

interface PlayEntry {
  readonly sessionId: string;
  /** the stream name counted in `pulls` */
  readonly pull: string | undefined;
}

interface PullEntry {
  players: number;
  jobs: ManagedJob[] | undefined;
  /** the connection whose play started the jobs */
  startedBy: string | undefined;
}

function byKind(commands: readonly PreparedCommand[], ...kinds: ExecKind[]): PreparedCommand[] {
  return commands.filter((c) => kinds.includes(c.kind));
}

/** The exec module of one application; undefined when it has no exec command. */
export function execModule(app: ApplicationConfig, deps: ModuleDeps, limits: ExecLimits = {}): ExecModule | undefined {
  const settings = app.exec;
  if (settings.commands.length === 0) return undefined;
  const killSignal = parseKillSignal(settings.killSignal);
  const commands = settings.commands.map((c) => prepareCommand(c, settings.options));
  const respawnMs = settings.respawn ? settings.respawnTimeout : undefined;
  const push = byKind(commands, 'exec', 'exec_push');
  const pull = byKind(commands, 'exec_pull');
  const onPublish = byKind(commands, 'exec_publish');
  const onPublishDone = byKind(commands, 'exec_publish_done');
  const onPlay = byKind(commands, 'exec_play');
  const onPlayDone = byKind(commands, 'exec_play_done');
  const onRecordStarted = byKind(commands, 'exec_record_started');
  const onRecordDone = byKind(commands, 'exec_record_done');
  const statics = byKind(commands, 'exec_static');

  const log = deps.logger.child({ module: 'exec' });
  const children = new ChildSet(limits.maxChildren, limits.maxSessionChildren);
  const publishes = new Map<PublishContext, PublishEntry>();
  const plays = new Map<PlayContext, PlayEntry>();
  const pulls = new Map<string, PullEntry>();
  const staticJobs = statics.map((c) => new ManagedJob(children, c, {}, log, settings.respawnTimeout, killSignal));

  /** run-once commands for a connection (`owner`), counted against its bound */
  const runOnce = (cmds: readonly PreparedCommand[], name: string, vars: ExecVariables, l: Logger, owner: SessionInfo): void => {
    for (const c of cmds) if (appliesTo(c, name)) children.spawn(c, vars, l, () => undefined, owner);
  };
  const pushVars = (ctx: PublishContext | PlayContext): ExecVariables => ({ ...sessionVars(ctx.session), name: ctx.name, args: ctx.query });
  const streamLog = (ctx: PublishContext | PlayContext): Logger => ctx.session.log.child({ module: 'exec', stream: ctx.name });

  const maxPulls = limits.maxPulls ?? EXEC_MAX_PULLS;
  const maxSessionPulls = limits.maxSessionPulls ?? EXEC_MAX_SESSION_PULLS;
  /** a connection told it reached a bound on exec_pull (one warning each) */
  const PULL_WARNED = new SessionKey('exec', () => ({ warned: false }));

  const acquirePull = (name: string, session: SessionInfo): void => {
    let entry = pulls.get(name);
    if (entry === undefined) {
      entry = { players: 0, jobs: undefined, startedBy: undefined };
      pulls.set(name, entry);
    }
    entry.players++;
    if (entry.jobs !== undefined || deps.hub.get(app.name, name)?.active === true) return;
    // a client playing many names must not start a program for each (a later player of this name tries again)
    let running = 0;
    let mine = 0;
    for (const e of pulls.values()) {
      if (e.jobs === undefined) continue;
      running++;
      if (e.startedBy === session.id) mine++;
    }
    if (running >= maxPulls || mine >= maxSessionPulls) {
      const warned = sessionState(session, PULL_WARNED);
      if (!warned.warned) {
        session.log.warn({ module: 'exec', stream: name, running, max: running >= maxPulls ? maxPulls : maxSessionPulls }, `exec: too many exec_pull streams ${running >= maxPulls ? 'in the application' : 'for this connection'}, not started`);
      }
      warned.warned = true;
      return;
    }
    entry.startedBy = session.id;
    const l = log.child({ stream: name });
    entry.jobs = pull.filter((c) => appliesTo(c, name)).map((c) => new ManagedJob(children, c, { name, app: app.name }, l, respawnMs, killSignal));
    for (const j of entry.jobs) j.start();
  };

  const releasePull = (name: string): void => {
    const entry = pulls.get(name);
    if (entry === undefined) return;
    entry.players--;
    if (entry.players > 0) return;
    pulls.delete(name);
    for (const j of entry.jobs ?? []) j.stop();
  };

  const mod: ExecModule = {
    name: 'exec',

    async play(ctx: PlayContext, next: Next): Promise<void> {
      // the rest of the chain and the live step's checks run first: a refused play starts nothing here
      await next();
      if (children.closed) return;
      const usePull = pull.length > 0;
      plays.set(ctx, { sessionId: ctx.session.id, pull: usePull ? ctx.name : undefined });
      runOnce(onPlay, ctx.name, pushVars(ctx), streamLog(ctx), ctx.session);
      if (usePull) acquirePull(ctx.name, ctx.session);
    },

    published(ctx: PublishContext, _stream: LiveStream): void {
      if (children.closed) return;
      const l = streamLog(ctx);
      const vars = pushVars(ctx);
      runOnce(onPublish, ctx.name, vars, l, ctx.session);
      const jobs = push.filter((c) => appliesTo(c, ctx.name)).map((c) => new ManagedJob(children, c, vars, l, respawnMs, killSignal));
      publishes.set(ctx, { sessionId: ctx.session.id, jobs });
      for (const j of jobs) j.start();
    },

    publishDone(ctx: PublishContext): void {
      const entry = publishes.get(ctx);
      if (entry === undefined) return;
      publishes.delete(ctx);
      runOnce(onPublishDone, ctx.name, pushVars(ctx), streamLog(ctx), ctx.session);
      for (const j of entry.jobs) j.stop();
    },

    playDone(ctx: PlayContext): void {
      const entry = plays.get(ctx);
      if (entry === undefined) return;
      plays.delete(ctx);
      runOnce(onPlayDone, ctx.name, pushVars(ctx), streamLog(ctx), ctx.session);
      if (entry.pull !== undefined) releasePull(entry.pull);
    },

    disconnect(session: SessionInfo): void {
      for (const [ctx, e] of [...publishes]) if (e.sessionId === session.id) mod.publishDone?.(ctx);
      for (const [ctx, e] of [...plays]) if (e.sessionId === session.id) mod.playDone?.(ctx);
      children.forget(session);
      dropSessionState(session, PULL_WARNED);
    },

    recordStarted(ev: RecordEvent): void {
      runOnce(onRecordStarted, ev.name, recordVars(ev), ev.session.log.child({ module: 'exec', stream: ev.name }), ev.session);
    },

    recordDone(ev: RecordEvent): void {
      runOnce(onRecordDone, ev.name, recordVars(ev), ev.session.log.child({ module: 'exec', stream: ev.name }), ev.session);
    },

    pids(): number[] {
      return children.pids();
    },

    async close(): Promise<void> {
      for (const e of publishes.values()) for (const j of e.jobs) j.stop(false);
      for (const e of pulls.values()) for (const j of e.jobs ?? []) j.stop(false);
      for (const j of staticJobs) j.stop(false);
      publishes.clear();
      plays.clear();
      pulls.clear();
      await children.close(killSignal, log);
    },
  };

  for (const j of staticJobs) j.start();
  return mod;
}

export interface ExecStaticRunner {
  pids(): number[];
  close(): Promise<void>;
}

/**
 * The global `exec_static` list (ServerConfig.execStatic): started now,
 * respawned after respawn_timeout whenever they exit, killed by close().
 * Undefined when there is none.
 */
export function startExecStatic(settings: ExecSettings | undefined, logger: Logger): ExecStaticRunner | undefined {
  const commands = (settings?.commands ?? []).filter((c) => c.kind === 'exec_static');
  if (settings === undefined || commands.length === 0) return undefined;
  const killSignal = parseKillSignal(settings.killSignal);
  const log = logger.child({ module: 'exec' });
  const children = new ChildSet();
  const jobs = commands.map((c) => new ManagedJob(children, prepareCommand(c, settings.options), {}, log, settings.respawnTimeout, killSignal));
  for (const j of jobs) j.start();
  return {
    pids: () => children.pids(),
    close: async () => {
      for (const j of jobs) j.stop(false);
      await children.close(killSignal, log);
    },
  };
}
