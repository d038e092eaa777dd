/**
 * The logger interface every layer uses. It is satisfied structurally by a pino
 * logger (created in cli.ts), so `core` depends on no logging library.
 */
export type LogFields = Record<string, unknown>;

export interface LogFn {
  (fields: LogFields, msg?: string): void;
  (msg: string): void;
}

export interface Logger {
  trace: LogFn;
  debug: LogFn;
  info: LogFn;
  warn: LogFn;
  error: LogFn;
  fatal: LogFn;
  child(bindings: LogFields): Logger;
}

function noop(): void {}

/** A logger that drops everything (tests, library use). */
export function silentLogger(): Logger {
  const l: Logger = {
    trace: noop,
    debug: noop,
    info: noop,
    warn: noop,
    error: noop,
    fatal: noop,
    child: () => l,
  };
  return l;
}

/** A logger that records entries in memory; tests assert on log lines with it. */
export interface MemoryLogEntry {
  level: string;
  msg: string;
  fields: LogFields;
}

export function memoryLogger(entries: MemoryLogEntry[] = [], bindings: LogFields = {}): Logger & { entries: MemoryLogEntry[] } {
  const make = (level: string): LogFn =>
    ((a: LogFields | string, b?: string) => {
      if (typeof a === 'string') entries.push({ level, msg: a, fields: { ...bindings } });
      else entries.push({ level, msg: b ?? '', fields: { ...bindings, ...a } });
    }) as LogFn;
  return {
    entries,
    trace: make('trace'),
    debug: make('debug'),
    info: make('info'),
    warn: make('warn'),
    error: make('error'),
    fatal: make('fatal'),
    child: (more: LogFields) => memoryLogger(entries, { ...bindings, ...more }),
  };
}
