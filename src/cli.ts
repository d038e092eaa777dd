#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { ErrorCode, ServerError, describeError, serverError } from './core/errors.js';
import type { Logger } from './core/log.js';
import { defaultConfig } from './config/default.js';
import { loadConfigFile } from './config/load.js';
import type { ServerConfig } from './config/types.js';
import { RtmpServer } from './server.js';
import { buildModules } from './app/modules.js';

const USAGE = `Usage: rtmp-server [PORT] [-c FILE] [-t] [--help] [--version]

  PORT             listen for RTMP on this port (default 1935, or the configuration's)
  -c, --config F   read an nginx-rtmp style configuration file
  -t, --test       check the configuration and exit (0 = valid, 1 = errors)
  -h, --help       show this help
  -v, --version    print the version

Without -c the embedded default configuration runs: one application "live", live on.
Signals: SIGTERM/SIGINT stop gracefully, SIGHUP reloads the configuration file.`;

export interface CliArgs {
  port: number | undefined;
  config: string | undefined;
  test: boolean;
  help: boolean;
  version: boolean;
}

export function parseArgs(argv: readonly string[]): CliArgs {
  const out: CliArgs = { port: undefined, config: undefined, test: false, help: false, version: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '-h' || a === '--help') out.help = true;
    else if (a === '-v' || a === '--version') out.version = true;
    else if (a === '-t' || a === '--test') out.test = true;
    else if (a === '-c' || a === '--config') {
      const f = argv[++i];
      if (f === undefined) throw serverError(ErrorCode.Usage, `${a} needs a file name`);
      out.config = f;
    } else if (a.startsWith('--config=')) out.config = a.slice('--config='.length);
    else if (/^\d+$/.test(a)) {
      const port = Number(a);
      if (port < 1 || port > 65535) throw serverError(ErrorCode.Usage, `port out of range: ${a}`);
      out.port = port;
    } else throw serverError(ErrorCode.Usage, `unknown argument: ${a}`);
  }
  return out;
}

function version(): string {
  const pkgPath = fileURLToPath(new URL('../package.json', import.meta.url));
  const pkg = JSON.parse(readFileSync(pkgPath, 'utf8')) as { version?: unknown };
  return typeof pkg.version === 'string' ? pkg.version : '0.0.0';
}

/** Loads the configuration the arguments name; a port argument overrides every RTMP listen port. */
export function loadConfiguration(args: CliArgs): ServerConfig {
  if (args.config === undefined) return defaultConfig(args.port);
  const cfg = loadConfigFile(args.config);
  if (args.port === undefined) return cfg;
  const port = args.port;
  return Object.freeze({
    ...cfg,
    rtmp: cfg.rtmp.map((s) => Object.freeze({ ...s, listen: s.listen.map((l) => Object.freeze({ ...l, port })) })),
  });
}

function makeLogger(cfg: ServerConfig): Logger {
  const dest = cfg.log.destination;
  const stream = dest === 'stderr' ? pino.destination(2) : dest === 'stdout' ? pino.destination(1) : pino.destination({ dest, mkdir: true, sync: false });
  return pino({ level: process.env['LOG_LEVEL'] ?? cfg.log.level, base: { pid: process.pid } }, stream);
}

async function main(argv: readonly string[]): Promise<number> {
  let args: CliArgs;
  try {
    args = parseArgs(argv);
  } catch (e) {
    process.stderr.write(`${describeError(e).message}\n\n${USAGE}\n`);
    return 2;
  }
  if (args.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  if (args.version) {
    process.stdout.write(`rtmp-server ${version()}\n`);
    return 0;
  }
  let cfg: ServerConfig;
  try {
    cfg = loadConfiguration(args);
  } catch (e) {
    process.stderr.write(`rtmp-server: configuration ${args.config ?? '(default)'} is invalid:\n${describeError(e).message}\n`);
    return 1;
  }
  if (args.test) {
    for (const w of cfg.warnings) process.stderr.write(`warning: ${w}\n`);
    process.stdout.write(`rtmp-server: configuration ${cfg.source} is ok\n`);
    return 0;
  }
  const log = makeLogger(cfg);
  for (const w of cfg.warnings) log.warn(w);
  const server = new RtmpServer(cfg, { logger: log, modules: buildModules });
  try {
    await server.start();
  } catch (e) {
    log.fatal({ err: describeError(e).message }, 'cannot listen');
    return 1;
  }
  return await new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (signal: string): void => {
      if (stopping) return;
      stopping = true;
      log.info({ signal }, 'shutting down');
      server.stop().then(
        () => resolve(0),
        (e: unknown) => {
          log.error({ err: describeError(e).message }, 'shutdown failed');
          resolve(1);
        },
      );
    };
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
    process.on('SIGHUP', () => {
      if (args.config === undefined) {
        log.info('SIGHUP: no configuration file to reload');
        return;
      }
      const refused = (e: unknown): void => {
        const d = e instanceof ServerError ? { code: e.code, err: e.message } : { err: describeError(e).message };
        log.error(d, 'SIGHUP: new configuration refused, keeping the old one');
      };
      try {
        server.reload(loadConfiguration(args)).catch(refused);
      } catch (e) {
        refused(e);
      }
    });
  });
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
    // give the async log destination a moment, then leave even if a socket lingers
    setTimeout(() => process.exit(code), 100).unref();
  },
  (e: unknown) => {
    process.stderr.write(`rtmp-server: ${describeError(e).message}\n`);
    process.exit(1);
  },
);
