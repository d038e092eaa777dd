/** Command line of the load tool. */

export const USAGE = `Usage: npm run bench -- [options]
       node --import tsx bench/rtmp-load.ts [options]

One publisher sends a real FLV at real time (looping, monotonic timestamps);
N players ramp in and read as fast as their sockets allow.

  --url URL            rtmp://host:port/app/name (default rtmp://127.0.0.1:1935/live/bench)
  --players N          players (default 10)
  --seconds S          steady-state measurement window (default 10)
  --file F.flv         media (default bench/media/test.flv, generated with ffmpeg when missing;
                       publishers mode: bench/media/test-1m.flv)
  --pid PID            the server's process id: CPU and RSS from /proc/PID (else n/a)
  --workers W          worker threads hosting the players (default 1)
  --ramp S             ramp-up of the players, seconds (default 3)
  --settle S           wait after the ramp before measuring, seconds (default 2)
  --warmup S           publisher alone before the ramp, seconds (default 1)
  --drain S            after the players left, wait this long and sample the server's RSS (default 5)
  --latency            latency mode: one publisher and one player in this thread; reports the
                       publish-to-play delay of every message
  --vod                VOD mode: no publisher; N players play the URL (rtmp://host/vod/mp4:file.mp4)
                       from the server's play directory, each from the start; --file is the FLV of
                       the same content (for the expected bitrate)
  --flv-url URL        players (and the latency mode's player) play over HTTP-FLV from URL
                       (http://host:port/app/name.flv); the publisher still uses --url
  --publishers P       publishers mode: P publishers (default file ~1 Mbit/s), each with one player
  --no-players         publishers mode without the players (ingest, and the outputs: record, hls)
  --chunk-size B       chunk size our clients send with (default 4096)
  --connect-timeout S  per connection (default 10)
  --server-log FILE    our server's JSON log: drop episodes (warn) and dropped frames (info) it reports
  --json FILE          write the JSON report to FILE ('-': stdout, summary then goes to stderr)
  --label TEXT         a name for this run in the JSON (e.g. "ours", "nginx")
  --quiet              no progress lines
  -h, --help`;

export interface LoadArgs {
  url: string;
  players: number;
  seconds: number;
  file: string | undefined;
  pid: number | undefined;
  workers: number;
  ramp: number;
  settle: number;
  warmup: number;
  drain: number;
  latency: boolean;
  /** HTTP-FLV players: http://host:port/app/name.flv */
  flvUrl: string | undefined;
  publishers: number;
  /** publishers mode: no player per publisher */
  noPlayers: boolean;
  /** VOD mode: no publisher; the players play the URL's file from the server's `play` application */
  vod: boolean;
  chunkSize: number;
  connectTimeout: number;
  json: string | undefined;
  serverLog: string | undefined;
  label: string;
  quiet: boolean;
  help: boolean;
}

/** How a command-line handler reads the value of the option it was given. */
export interface ArgValue {
  /** the option's value: the next argument, or what follows `=` */
  value(): string;
  /** the value as a number, at least `min` (an integer unless `int` is false) */
  num(min: number, int?: boolean): number;
}

/** Walks `--key value` and `--key=value` arguments: `handle` gets each key and reads its value, if any, through `arg`. */
export function eachArg(argv: readonly string[], handle: (key: string, arg: ArgValue) => void): void {
  for (let i = 0; i < argv.length; i++) {
    let k = argv[i]!;
    let inline: string | undefined;
    const eq = k.indexOf('=');
    if (k.startsWith('--') && eq > 0) {
      inline = k.slice(eq + 1);
      k = k.slice(0, eq);
    }
    const value = (): string => {
      const v = inline ?? argv[++i];
      if (v === undefined) throw new Error(`${k} needs a value`);
      return v;
    };
    const num = (min: number, int = true): number => {
      const s = value();
      const n = Number(s);
      if (!Number.isFinite(n) || n < min || (int && !Number.isInteger(n))) throw new Error(`${k}: bad value ${s}`);
      return n;
    };
    handle(k, { value, num });
  }
}

export function parseLoadArgs(argv: readonly string[]): LoadArgs {
  const a: LoadArgs = {
    url: 'rtmp://127.0.0.1:1935/live/bench',
    players: 10,
    seconds: 10,
    file: undefined,
    pid: undefined,
    workers: 1,
    ramp: 3,
    settle: 2,
    warmup: 1,
    drain: 5,
    latency: false,
    flvUrl: undefined,
    publishers: 0,
    noPlayers: false,
    vod: false,
    chunkSize: 4096,
    connectTimeout: 10,
    json: undefined,
    serverLog: undefined,
    label: '',
    quiet: false,
    help: false,
  };
  eachArg(argv, (k, { value, num }) => {
    switch (k) {
      case '--url':
        a.url = value();
        break;
      case '--players':
        a.players = num(0);
        break;
      case '--seconds':
        a.seconds = num(0.1, false);
        break;
      case '--file':
        a.file = value();
        break;
      case '--pid':
        a.pid = num(1);
        break;
      case '--workers':
        a.workers = num(1);
        break;
      case '--ramp':
        a.ramp = num(0, false);
        break;
      case '--settle':
        a.settle = num(0, false);
        break;
      case '--warmup':
        a.warmup = num(0, false);
        break;
      case '--drain':
        a.drain = num(0, false);
        break;
      case '--vod':
        a.vod = true;
        break;
      case '--latency':
        a.latency = true;
        break;
      case '--flv-url':
        a.flvUrl = value();
        break;
      case '--publishers':
        a.publishers = num(1);
        break;
      case '--no-players':
        a.noPlayers = true;
        break;
      case '--chunk-size':
        a.chunkSize = num(128);
        break;
      case '--connect-timeout':
        a.connectTimeout = num(0.1, false);
        break;
      case '--json':
        a.json = value();
        break;
      case '--server-log':
        a.serverLog = value();
        break;
      case '--label':
        a.label = value();
        break;
      case '--quiet':
        a.quiet = true;
        break;
      case '-h':
      case '--help':
        a.help = true;
        break;
      default:
        throw new Error(`unknown argument: ${k}`);
    }
  });
  if (!/^rtmp:\/\/[^/]+\/[^/]+\/[^/]+$/.test(a.url)) throw new Error(`--url must be rtmp://host[:port]/app/name, got ${a.url}`);
  if (a.flvUrl !== undefined && !/^http:\/\/[^/]+\/.+\.flv(\?.*)?$/.test(a.flvUrl)) throw new Error(`--flv-url must be http://host[:port]/app/name.flv, got ${a.flvUrl}`);
  if (a.flvUrl !== undefined && a.publishers > 0) throw new Error('--flv-url works with --players and --latency, not --publishers');
  return a;
}

/** rtmp://host:port/app/name -> { appUrl: rtmp://host:port/app, name } */
export function splitStreamUrl(url: string): { appUrl: string; name: string } {
  const i = url.lastIndexOf('/');
  return { appUrl: url.slice(0, i), name: url.slice(i + 1) };
}
