import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ErrorCode, ServerError, isServerError } from '../../src/core/errors.js';
import { DEFAULT_CONFIG_SOURCE, DEFAULT_CONFIG_TEXT, defaultConfig } from '../../src/config/default.js';
import { loadConfigFile, parseConfigText, parseFlag, parseSignal, parseSize, parseTime } from '../../src/config/load.js';
import type { ApplicationConfig, RtmpServerConfig, ServerConfig } from '../../src/config/types.js';

const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), 'fixtures');

function load(text: string): ServerConfig {
  return parseConfigText(text, 't.conf', { readFile: () => '', glob: () => [] });
}

/** `rtmp { server { listen 1935; <server> application app { <app> } } }` */
function app(appBody: string, serverBody = '', rtmpBody = ''): ApplicationConfig {
  const cfg = load(`rtmp {\n${rtmpBody}\nserver {\nlisten 1935;\n${serverBody}\napplication app {\n${appBody}\n}\n}\n}\n`);
  const a = cfg.rtmp[0]?.applications[0];
  assert.ok(a);
  return a;
}

function server(serverBody: string, rtmpBody = ''): RtmpServerConfig {
  const s = load(`rtmp {\n${rtmpBody}\nserver {\n${serverBody}\n}\n}\n`).rtmp[0];
  assert.ok(s);
  return s;
}

function failure(fn: () => unknown): ServerError {
  try {
    fn();
  } catch (e) {
    assert.ok(isServerError(e), `expected a ServerError, got ${String(e)}`);
    return e;
  }
  assert.fail('expected an error');
}

/** the config fails with `code` and a message line matching `re` */
function refused(text: string, code: ErrorCode, re: RegExp): ServerError {
  const e = failure(() => load(text));
  assert.equal(e.code, code, e.message);
  assert.match(e.message, re);
  return e;
}

/** line and column where `needle` starts in `text` */
function position(text: string, needle: string): string {
  const at = text.indexOf(needle);
  assert.ok(at >= 0, needle);
  const before = text.slice(0, at).split('\n');
  return `${before.length}:${(before[before.length - 1]?.length ?? 0) + 1}`;
}

describe('value syntax', () => {
  it('reads nginx times in milliseconds; a plain number is seconds', () => {
    const cases: [string, number][] = [
      ['30s', 30_000],
      ['5m', 300_000],
      ['1h', 3_600_000],
      ['500ms', 500],
      ['60', 60_000],
      ['0', 0],
      ['1m30s', 90_000],
      ['1h 30m', 5_400_000],
      ['1m30', 90_000],
      ['1d', 86_400_000],
      ['2w', 1_209_600_000],
    ];
    for (const [text, ms] of cases) assert.equal(parseTime(text), ms, text);
    for (const bad of ['', 's', '5x', '1s1m', '1ms5', '30 s', '-1s', '1.5s', 'off', '10sec']) assert.equal(parseTime(bad), undefined, bad);
  });

  it('reads nginx sizes in bytes', () => {
    assert.equal(parseSize('4096'), 4096);
    assert.equal(parseSize('128k'), 131_072);
    assert.equal(parseSize('128K'), 131_072);
    assert.equal(parseSize('1m'), 1_048_576);
    assert.equal(parseSize('2M'), 2_097_152);
    assert.equal(parseSize('1g'), 1_073_741_824);
    for (const bad of ['', 'k', '1.5m', '-1', '1mb', '1 m']) assert.equal(parseSize(bad), undefined, bad);
  });

  it('reads flags and signals', () => {
    assert.equal(parseFlag('on'), true);
    assert.equal(parseFlag('OFF'), false);
    assert.equal(parseFlag('yes'), undefined);
    assert.equal(parseSignal('term'), 'SIGTERM');
    assert.equal(parseSignal('KILL'), 'SIGKILL');
    assert.equal(parseSignal('sigusr1'), 'SIGUSR1');
    assert.equal(parseSignal('9'), 'SIGKILL');
    assert.equal(parseSignal('15'), 'SIGTERM');
    assert.equal(parseSignal('nope'), undefined);
    assert.equal(parseSignal('999'), undefined);
  });
});

describe('a realistic nginx-rtmp configuration', () => {
  const file = join(FIXTURES, 'nginx-realistic.conf');
  const text = readFileSync(file, 'utf8');
  const cfg = loadConfigFile(file);

  it('reads the rtmp servers with inheritance from the rtmp block', () => {
    assert.equal(cfg.source, file);
    assert.equal(cfg.rtmp.length, 2);
    const [s1, s2] = cfg.rtmp;
    assert.ok(s1 && s2);
    assert.deepEqual(s1.listen, [
      { host: '0.0.0.0', port: 1935, proxyProtocol: false, ipv6Only: false },
      { host: '::', port: 1935, proxyProtocol: false, ipv6Only: true },
    ]);
    assert.equal(s1.chunkSize, 8192, 'chunk_size from rtmp{}');
    assert.equal(s1.ping, 180_000, 'ping 3m from rtmp{}');
    assert.equal(s1.pingTimeout, 30_000);
    assert.equal(s1.timeout, 30_000, 'timeout 30s in server{}');
    assert.equal(s1.maxConnections, 500);
    assert.equal(s1.maxStreams, 32);
    assert.equal(s1.ackWindow, 5_000_000);
    assert.equal(s1.maxMessage, 1_048_576);
    assert.equal(s1.outQueue, 256);
    assert.equal(s1.outCork, 32);
    assert.equal(s1.buflen, 1000);
    assert.deepEqual(s2.listen, [{ host: '127.0.0.1', port: 1936, proxyProtocol: true, ipv6Only: false }]);
    assert.equal(s2.chunkSize, 4096, 'server{} overrides rtmp{}');
    assert.equal(s2.ping, 180_000);
    assert.equal(s2.timeout, 60_000, 'default');
    assert.equal(s2.maxConnections, 0);
    assert.deepEqual(
      cfg.rtmp.map((s) => s.applications.map((a) => a.name)),
      [['live', 'preview'], ['internal']],
    );
  });

  it('reads application "live": live settings, access, notify, exec, push', () => {
    const live = cfg.rtmp[0]?.applications[0];
    assert.ok(live);
    assert.deepEqual(live.live, {
      live: true,
      meta: 'copy',
      interleave: false,
      waitKey: false, // wait_key off in server{}
      waitVideo: false,
      publishNotify: false,
      playRestart: false,
      idleStreams: true,
      dropIdlePublisher: 10_000,
      sync: 300,
      gopCache: true,
      flushWindow: 0,
    });
    assert.deepEqual(live.access, [
      { action: 'allow', kind: 'publish', address: '127.0.0.1' },
      { action: 'allow', kind: 'publish', address: '192.168.1.0/24' },
      { action: 'allow', kind: 'publish', address: '2001:db8::/32' },
      { action: 'deny', kind: 'publish', address: 'all' },
      { action: 'allow', kind: 'play', address: 'all' }, // from rtmp{}, after the application's own rules
    ]);
    assert.deepEqual(live.notify, {
      onConnect: 'http://127.0.0.1:8080/connect',
      onDisconnect: undefined,
      onPlay: undefined,
      onPublish: 'http://127.0.0.1:8080/auth',
      onDone: undefined,
      onPlayDone: undefined,
      onPublishDone: 'http://localhost:8080/done',
      onRecordStarted: undefined,
      onRecordDone: undefined,
      onUpdate: undefined,
      updateTimeout: 30_000,
      updateStrict: false,
      relayRedirect: false,
      method: 'GET',
    });
    assert.deepEqual(live.exec, {
      commands: [{ kind: 'exec', argv: ['ffmpeg', '-i', 'rtmp://localhost/live/$name', '-c:v', 'libx264', '-f', 'flv', 'rtmp://localhost/preview/${name}_low'] }],
      killSignal: 'SIGTERM',
      respawn: true,
      respawnTimeout: 5000,
      options: false,
    });
    assert.deepEqual(live.relay, {
      push: [
        { url: 'rtmp://a.rtmp.youtube.com/live2/streamkey', app: 'live2', name: undefined, playPath: 'streamkey', live: undefined, isStatic: false, params: {} },
        {
          url: 'rtmp://backup.example.com:1936/ingest',
          app: 'live',
          name: 'cam1',
          playPath: 'cam1-backup',
          live: true,
          isStatic: false,
          params: { flashVer: 'FMLE/3.0 (compatible)' },
        },
      ],
      pull: [],
      pushReconnect: 3000,
      pullReconnect: 3000,
      sessionRelay: false,
    });
    assert.deepEqual(live.directives['allow'], [
      ['publish', '127.0.0.1'],
      ['publish', '192.168.1.0/24'],
      ['publish', '2001:db8::/32'],
      ['play', 'all'],
    ]);
    assert.deepEqual(live.directives['wait_key'], [['off']], 'inherited directives are listed');
    assert.deepEqual(live.directives['meta'], [['copy']]);
  });

  it('reads application "preview" (own notify_method, static pull) and "internal"', () => {
    const preview = cfg.rtmp[0]?.applications[1];
    assert.ok(preview);
    assert.equal(preview.notify.method, 'POST');
    assert.equal(preview.notify.onConnect, 'http://127.0.0.1:8080/connect');
    assert.equal(preview.live.meta, 'on');
    assert.deepEqual(preview.access, [
      { action: 'allow', kind: 'play', address: '10.0.0.0/8' },
      { action: 'deny', kind: 'play', address: 'all' },
      { action: 'allow', kind: 'play', address: 'all' },
    ]);
    assert.deepEqual(preview.relay.pull, [{ url: 'rtmp://origin.example.com/live/main', app: 'live', name: 'main', playPath: 'main', live: undefined, isStatic: true, params: {} }]);
    assert.deepEqual(preview.exec.commands, [{ kind: 'exec_publish', argv: ['/usr/local/bin/notify.sh', '$app', '$name'] }]);
    const internal = cfg.rtmp[1]?.applications[0];
    assert.ok(internal);
    assert.equal(internal.live.idleStreams, false);
    assert.equal(internal.live.waitKey, true, 'wait_key off was set in the other server');
    assert.equal(internal.notify.onConnect, undefined);
    assert.equal(internal.notify.method, 'GET');
    assert.deepEqual(internal.exec.commands, [], 'exec_static is not an application command');
    assert.deepEqual(cfg.execStatic?.commands, [{ kind: 'exec_static', argv: ['/usr/bin/logger', 'rtmp started'] }]);
    assert.equal(cfg.execStatic?.killSignal, 'SIGTERM');
  });

  it('reads the http block: listen, locations, types, headers, stat and control', () => {
    assert.equal(cfg.http.length, 1);
    const h = cfg.http[0];
    assert.ok(h);
    assert.deepEqual(h.listen, [{ host: '0.0.0.0', port: 8080, proxyProtocol: false, ipv6Only: false }]);
    assert.deepEqual(h.locations, [
      {
        path: '/hls',
        exact: false,
        root: '/tmp',
        alias: undefined,
        rtmpStat: false,
        rtmpControl: false,
        controlSections: [],
        statSections: [],
        access: [],
        addHeaders: [
          ['Cache-Control', 'no-cache'],
          ['Access-Control-Allow-Origin', '*'],
        ],
        types: { m3u8: 'application/vnd.apple.mpegurl', ts: 'video/mp2t' },
        defaultType: 'application/octet-stream',
        rules: {
          headers: [
            { name: 'Cache-Control', value: 'no-cache', always: false },
            { name: 'Access-Control-Allow-Origin', value: '*', always: true },
          ],
          conditions: [],
          ret: undefined,
          expires: undefined,
        },
      },
      {
        path: '/stat',
        exact: false,
        root: undefined,
        alias: undefined,
        rtmpStat: true,
        rtmpControl: false,
        controlSections: [],
        statSections: ['live', 'clients'],
        access: [],
        addHeaders: [],
        types: { html: 'text/html', htm: 'text/html', m3u8: 'application/vnd.apple.mpegurl', ts: 'video/mp2t' },
        defaultType: 'application/octet-stream',
        rules: { headers: [], conditions: [], ret: undefined, expires: undefined },
      },
      {
        path: '/control',
        exact: true,
        root: undefined,
        alias: undefined,
        rtmpStat: false,
        rtmpControl: true,
        controlSections: ['drop'],
        statSections: [],
        access: [
          { action: 'allow', address: '127.0.0.1' },
          { action: 'allow', address: '::1' },
          { action: 'deny', address: 'all' },
        ],
        addHeaders: [],
        types: { html: 'text/html', htm: 'text/html', m3u8: 'application/vnd.apple.mpegurl', ts: 'video/mp2t' },
        defaultType: 'application/octet-stream',
        rules: { headers: [], conditions: [], ret: undefined, expires: undefined },
      },
    ]);
  });

  it('reads error_log and warns once per ignored nginx directive, with its position', () => {
    assert.deepEqual(cfg.log, { destination: '/var/log/nginx/error.log', level: 'warn' });
    assert.deepEqual(cfg.warnings, [
      `${file}:${position(text, 'user www-data')}: directive "user" is ignored`,
      `${file}:${position(text, 'worker_processes')}: directive "worker_processes" is ignored`,
      `${file}:${position(text, 'pid ')}: directive "pid" is ignored`,
      `${file}:${position(text, 'load_module')}: directive "load_module" is ignored`,
      `${file}:${position(text, 'events')}: directive "events" is ignored`,
      `${file}:${position(text, 'sendfile')}: directive "sendfile" is ignored`,
      `${file}:${position(text, 'tcp_nopush')}: directive "tcp_nopush" is ignored`,
      `${file}:${position(text, 'server_name')}: directive "server_name" is ignored`,
    ]);
  });

  it('is deeply frozen', () => {
    assert.ok(Object.isFrozen(cfg));
    assert.ok(Object.isFrozen(cfg.rtmp));
    assert.ok(Object.isFrozen(cfg.rtmp[0]?.listen[0]));
    assert.ok(Object.isFrozen(cfg.rtmp[0]?.applications[0]?.relay.push[0]?.params));
    assert.ok(Object.isFrozen(cfg.rtmp[0]?.applications[0]?.directives['allow']?.[0]));
    assert.ok(Object.isFrozen(cfg.http[0]?.locations[0]?.types));
    assert.throws(() => {
      (cfg.rtmp[0] as { chunkSize: number }).chunkSize = 1;
    }, TypeError);
  });

  it('loads the same configuration with an hls application (hls, hls_path, hls_fragment read)', () => {
    const cfg = loadConfigFile(join(FIXTURES, 'nginx-with-hls.conf'));
    const hls = cfg.rtmp[0]?.applications.find((a) => a.name === 'hls')?.hls;
    assert.equal(hls?.enabled, true);
    assert.equal(hls?.path, '/tmp/hls');
    assert.equal(hls?.fragment, 3000);
    assert.equal(cfg.rtmp[0]?.applications.find((a) => a.name === 'live')?.hls?.enabled, false);
  });
});

describe('inheritance rtmp → server → application', () => {
  const cfg = load(`
rtmp {
    ping 10s;
    live on;
    wait_video on;
    exec_options on;
    respawn_timeout 2s;
    allow publish 10.0.0.1;
    exec_publish /bin/rtmp-level;
    on_play http://rtmp-level/play;
    server {
        listen 1935;
        ping_timeout 5s;
        meta off;
        deny publish 10.0.0.2;
        exec_publish /bin/server-level;
        application a {
        }
        application b {
            live off;
            meta copy;
            respawn off;
            allow publish 10.0.0.3;
            exec_publish /bin/app-level $name;
            exec_play /bin/app-play;
            on_play http://app-level/play;
        }
    }
    server {
        listen 1936;
        ping 20s;
        application c {
        }
    }
}`);
  const [s1, s2] = cfg.rtmp;
  const [a, b] = s1?.applications ?? [];
  const c = s2?.applications[0];

  it('server settings come from the server, else rtmp{}, else the default', () => {
    assert.deepEqual([s1?.ping, s1?.pingTimeout, s2?.ping, s2?.pingTimeout], [10_000, 5000, 20_000, 30_000]);
  });

  it('an application without settings takes the server and rtmp values', () => {
    assert.ok(a);
    assert.equal(a.live.live, true);
    assert.equal(a.live.meta, 'off');
    assert.equal(a.live.waitVideo, true);
    assert.equal(a.exec.options, true);
    assert.equal(a.exec.respawn, true);
    assert.equal(a.exec.respawnTimeout, 2000);
    assert.equal(a.notify.onPlay, 'http://rtmp-level/play');
    assert.deepEqual(a.access, [
      { action: 'deny', kind: 'publish', address: '10.0.0.2' },
      { action: 'allow', kind: 'publish', address: '10.0.0.1' },
    ]);
    assert.deepEqual(
      a.exec.commands.map((x) => x.argv[0]),
      ['/bin/server-level', '/bin/rtmp-level'],
    );
  });

  it('application values win; lists are the application\'s, then the server\'s, then rtmp{}\'s', () => {
    assert.ok(b);
    assert.equal(b.live.live, false);
    assert.equal(b.live.meta, 'copy');
    assert.equal(b.exec.respawn, false);
    assert.equal(b.notify.onPlay, 'http://app-level/play');
    assert.deepEqual(b.access, [
      { action: 'allow', kind: 'publish', address: '10.0.0.3' },
      { action: 'deny', kind: 'publish', address: '10.0.0.2' },
      { action: 'allow', kind: 'publish', address: '10.0.0.1' },
    ]);
    assert.deepEqual(b.exec.commands, [
      { kind: 'exec_publish', argv: ['/bin/app-level', '$name'] },
      { kind: 'exec_play', argv: ['/bin/app-play'] },
      { kind: 'exec_publish', argv: ['/bin/server-level'] },
      { kind: 'exec_publish', argv: ['/bin/rtmp-level'] },
    ]);
    assert.deepEqual(b.directives['exec_publish'], [['/bin/app-level', '$name'], ['/bin/server-level'], ['/bin/rtmp-level']]);
    assert.deepEqual(b.directives['live'], [['off']]);
  });

  it('another server only sees rtmp{} values', () => {
    assert.ok(c);
    assert.equal(c.live.meta, 'on');
    assert.equal(c.live.live, true);
    assert.deepEqual(c.access, [{ action: 'allow', kind: 'publish', address: '10.0.0.1' }]);
  });

  it('defaults match nginx-rtmp', () => {
    const d = app('');
    assert.deepEqual(d.live, {
      live: false,
      meta: 'on',
      interleave: false,
      waitKey: true,
      waitVideo: false,
      publishNotify: false,
      playRestart: false,
      idleStreams: true,
      dropIdlePublisher: 0,
      sync: 300,
      gopCache: true,
      flushWindow: 0,
    });
    assert.deepEqual(d.exec, { commands: [], killSignal: 'SIGKILL', respawn: true, respawnTimeout: 5000, options: false });
    assert.deepEqual([d.notify.method, d.notify.updateTimeout, d.notify.updateStrict, d.notify.relayRedirect], ['POST', 30_000, false, false]);
    assert.deepEqual([d.relay.pushReconnect, d.relay.sessionRelay], [3000, false]);
    assert.deepEqual(d.directives, {});
  });

  it('out_cork defaults to out_queue / 8', () => {
    assert.equal(server('out_queue 512;').outCork, 64);
    assert.equal(server('out_queue 512; out_cork 10;').outCork, 10);
    assert.equal(server('', 'out_queue 80;').outCork, 10);
  });

  it('reads every live setting', () => {
    const l = app('live on; meta off; interleave on; wait_key off; wait_video on; publish_notify on; play_restart on; idle_streams off; drop_idle_publisher 15s; sync off; gop_cache off; flush_window 15ms;').live;
    assert.deepEqual(l, {
      live: true,
      meta: 'off',
      interleave: true,
      waitKey: false,
      waitVideo: true,
      publishNotify: true,
      playRestart: true,
      idleStreams: false,
      dropIdlePublisher: 15_000,
      sync: 0,
      gopCache: false,
      flushWindow: 15,
    });
  });

  it('reads every notify setting', () => {
    const n = app(
      'on_play a/play; on_publish http://b/pub; on_done https://c/done; on_play_done d/pd; on_publish_done e/pubd; on_record_done f/rd; on_update g/up; notify_update_timeout 10s; notify_update_strict on; notify_relay_redirect on; notify_method GET;',
      'on_connect conn.example.com:8080/c; on_disconnect conn.example.com:8080/d;',
    ).notify;
    assert.deepEqual(n, {
      onConnect: 'http://conn.example.com:8080/c',
      onDisconnect: 'http://conn.example.com:8080/d',
      onPlay: 'http://a/play',
      onPublish: 'http://b/pub',
      onDone: 'https://c/done',
      onPlayDone: 'http://d/pd',
      onPublishDone: 'http://e/pubd',
      onRecordStarted: undefined,
      onRecordDone: 'http://f/rd',
      onUpdate: 'http://g/up',
      updateTimeout: 10_000,
      updateStrict: true,
      relayRedirect: true,
      method: 'GET',
    });
  });

  it('reads the server-level settings', () => {
    const s = server('listen 1935; timeout 10; ping 0; ping_timeout 500ms; max_streams 64; ack_window 2500000; chunk_size 128; max_message 2m; out_queue 1k; buflen 5s; max_connections 100;');
    assert.deepEqual(
      [s.timeout, s.ping, s.pingTimeout, s.maxStreams, s.ackWindow, s.chunkSize, s.maxMessage, s.outQueue, s.outCork, s.buflen, s.maxConnections],
      [10_000, 0, 500, 64, 2_500_000, 128, 2_097_152, 1024, 128, 5000, 100],
    );
    assert.equal(s.directWrite, true, 'direct_write is on by default');
    assert.equal(s.tcpNodelay, true, 'tcp_nodelay is on by default');
    assert.equal(server('listen 1935; tcp_nodelay off;').tcpNodelay, false);
    assert.equal(server('listen 1935; direct_write off;').directWrite, false);
    assert.equal(s.nativeWrite, true, 'native_write is on by default');
    assert.equal(server('listen 1935; native_write off;').nativeWrite, false);
    assert.throws(() => server('listen 1935; application a { native_write off; }'), /native_write/, 'a server-level setting');
    assert.equal(s.sharedRead, true, 'shared_read is on by default');
    assert.equal(server('listen 1935; shared_read off;').sharedRead, false);
    assert.throws(() => server('listen 1935; application a { shared_read off; }'), /shared_read/, 'a server-level setting');
    assert.equal(s.readWindow, 4, 'read_window is 4ms by default');
    assert.equal(server('listen 1935; read_window off;').readWindow, 0);
    assert.equal(server('listen 1935; read_window 10ms;').readWindow, 10);
    assert.equal(server('listen 1935; read_window 1s;').readWindow, 1000);
    assert.throws(() => server('listen 1935; read_window 2s;'), /read_window/, 'at most 1s (the native poller\'s limit)');
    assert.throws(() => server('listen 1935; application a { read_window 2ms; }'), /read_window/, 'a server-level setting');
    assert.equal(s.warmup, false, 'warmup is off by default (issue 14: not worth its memory without runtime tricks)');
    assert.equal(server('listen 1935; warmup on;').warmup, true);
    assert.equal(server('listen 1935; warmup off;').warmup, false);
    assert.throws(() => server('listen 1935; application a { warmup off; }'), /warmup/, 'a server-level setting');
    assert.throws(() => server('listen 1935; application a { direct_write off; }'), /direct_write/, 'a server-level setting');
  });
});

describe('listen', () => {
  it('accepts every nginx-rtmp address form and parameter', () => {
    const s = server(
      'listen 1935; listen 127.0.0.1:1936; listen [::]:1937; listen [::1]:1938 ipv6only=off; listen *:1939 proxy_protocol; listen localhost:1940; listen 10.1.2.3 bind; listen 1941 so_keepalive=on; listen 1942 so_keepalive=30s:10s:3; listen 1943 so_keepalive=off;',
    );
    assert.deepEqual(s.listen, [
      { host: '0.0.0.0', port: 1935, proxyProtocol: false, ipv6Only: false },
      { host: '127.0.0.1', port: 1936, proxyProtocol: false, ipv6Only: false },
      { host: '::', port: 1937, proxyProtocol: false, ipv6Only: false },
      { host: '::1', port: 1938, proxyProtocol: false, ipv6Only: false },
      { host: '0.0.0.0', port: 1939, proxyProtocol: true, ipv6Only: false },
      { host: 'localhost', port: 1940, proxyProtocol: false, ipv6Only: false },
      { host: '10.1.2.3', port: 1935, proxyProtocol: false, ipv6Only: false },
      { host: '0.0.0.0', port: 1941, proxyProtocol: false, ipv6Only: false, soKeepalive: true },
      { host: '0.0.0.0', port: 1942, proxyProtocol: false, ipv6Only: false, soKeepalive: true },
      { host: '0.0.0.0', port: 1943, proxyProtocol: false, ipv6Only: false, soKeepalive: false },
    ]);
  });

  it('applies so_keepalive to listens without the parameter', () => {
    const s = server('listen 1935; listen 1936 so_keepalive=off;', 'so_keepalive on;');
    assert.deepEqual(
      s.listen.map((l) => l.soKeepalive),
      [true, false],
    );
  });

  it('refuses bad addresses, ports and parameters at the argument position', () => {
    refused('rtmp { server {\n  listen 70000; } }', ErrorCode.ConfigBadValue, /^t\.conf:2:10: invalid value "70000" in "listen" directive: invalid port/);
    refused('rtmp { server { listen 1.2.3.4.5:1935; } }', ErrorCode.ConfigBadValue, /is not an address or host name/);
    refused('rtmp { server { listen 300.1.1.1:1935; } }', ErrorCode.ConfigBadValue, /is not an address or host name/);
    refused('rtmp { server { listen [::1:1935; } }', ErrorCode.ConfigBadValue, /missing "\]"/);
    refused('rtmp { server { listen ::1; } }', ErrorCode.ConfigBadValue, /in brackets/);
    refused('rtmp { server { listen 1935 backlog=10; } }', ErrorCode.ConfigBadValue, /^t\.conf:1:29: invalid value "backlog=10" in "listen" directive: unknown listen parameter/);
    refused('rtmp { server { listen 127.0.0.1:1935 ipv6only=on; } }', ErrorCode.ConfigBadValue, /ipv6only applies to IPv6/);
    refused('rtmp { server { listen 1935 so_keepalive=maybe; } }', ErrorCode.ConfigBadValue, /so_keepalive/);
    refused('rtmp { server { listen unix:/tmp/rtmp.sock; } }', ErrorCode.ConfigUnsupported, /UNIX domain sockets/);
  });

  it('refuses the same address and port twice, across servers', () => {
    refused('rtmp {\nserver { listen 1935; }\nserver { listen 0.0.0.0:1935; }\n}', ErrorCode.ConfigBadValue, /^t\.conf:3:10: duplicate listen address 0\.0\.0\.0:1935 \(already used at t\.conf:2:10\)/);
    refused('rtmp { server { listen 8080; } }\nhttp { server { listen 8080; } }', ErrorCode.ConfigBadValue, /duplicate listen address 0\.0\.0\.0:8080/);
    assert.equal(load('rtmp { server { listen 0; } server { listen 0; } }').rtmp.length, 2, 'port 0 (any free port) may repeat');
  });

  it('warns about a server without listen', () => {
    const cfg = load('rtmp {\n  server { application a {} }\n}');
    assert.deepEqual(cfg.warnings, ['t.conf:2:3: rtmp server has no "listen" directive: it accepts no connections']);
  });
});

describe('access rules', () => {
  it('reads publish/play/both, IPv4, IPv6, CIDR and all', () => {
    const a = app('allow 127.0.0.1; deny play ::1; allow play 192.168.1.0/24; deny publish 2001:db8::/48; allow play fe80::/10; deny publish all;');
    assert.deepEqual(a.access, [
      { action: 'allow', kind: 'publish', address: '127.0.0.1' },
      { action: 'allow', kind: 'play', address: '127.0.0.1' },
      { action: 'deny', kind: 'play', address: '::1' },
      { action: 'allow', kind: 'play', address: '192.168.1.0/24' },
      { action: 'deny', kind: 'publish', address: '2001:db8::/48' },
      { action: 'allow', kind: 'play', address: 'fe80::/10' },
      { action: 'deny', kind: 'publish', address: 'all' },
    ]);
  });

  it('warns about host bits set below the prefix', () => {
    const text = 'rtmp { server { listen 1935; application a { allow play 192.168.1.1/24; deny play ::1/64; allow play 10.0.0.0/8; } } }';
    assert.deepEqual(load(text).warnings, [
      `t.conf:${position(text, '192.168.1.1/24')}: low address bits of 192.168.1.1/24 are meaningless`,
      `t.conf:${position(text, '::1/64')}: low address bits of ::1/64 are meaningless`,
    ]);
    assert.equal(position(text, '::1/64'), '1:83');
  });

  it('refuses bad addresses, prefixes and kinds', () => {
    refused('rtmp { allow publish 300.1.1.1; }', ErrorCode.ConfigBadValue, /^t\.conf:1:22: invalid value "300\.1\.1\.1" in "allow" directive: "300\.1\.1\.1" is not an IPv4 or IPv6 address/);
    refused('rtmp { allow publish 10.0.0.0/33; }', ErrorCode.ConfigBadValue, /invalid prefix length "33"/);
    refused('rtmp { deny play ::1/129; }', ErrorCode.ConfigBadValue, /invalid prefix length "129"/);
    refused('rtmp { deny play example.com; }', ErrorCode.ConfigBadValue, /is not an IPv4 or IPv6 address/);
    refused('rtmp { allow record 1.2.3.4; }', ErrorCode.ConfigBadValue, /^t\.conf:1:14: invalid value "record" in "allow" directive: expected "publish" or "play"/);
    refused('rtmp { allow publish play 1.2.3.4; }', ErrorCode.ConfigBadValue, /invalid number of arguments in "allow" directive/);
  });
});

describe('relays', () => {
  it('normalises rtmp:// and bare host/app URLs and reads every parameter', () => {
    const r = app(
      'push backup.example.com/live; push RTMP://[::1]:1936/app/stream; push rtmp://h/a tcUrl=rtmp://x/a pageUrl=http://p swfUrl=http://s start=10 stop=-1 APP=other PLAYPATH=pp live=0; pull rtmp://origin:1935/src;',
    ).relay;
    assert.deepEqual(r.push, [
      { url: 'rtmp://backup.example.com/live', app: 'live', name: undefined, playPath: undefined, live: undefined, isStatic: false, params: {} },
      { url: 'rtmp://[::1]:1936/app/stream', app: 'app', name: undefined, playPath: 'stream', live: undefined, isStatic: false, params: {} },
      {
        url: 'rtmp://h/a',
        app: 'other',
        name: undefined,
        playPath: 'pp',
        live: false,
        isStatic: false,
        params: { tcUrl: 'rtmp://x/a', pageUrl: 'http://p', swfUrl: 'http://s', start: '10', stop: '-1' },
      },
    ]);
    assert.deepEqual(r.pull, [{ url: 'rtmp://origin:1935/src', app: 'src', name: undefined, playPath: undefined, live: undefined, isStatic: false, params: {} }]);
  });

  it('refuses other schemes, unknown parameters, static push and a static pull without name', () => {
    refused('rtmp { server { application a { push http://x/y; } } }', ErrorCode.ConfigBadValue, /expected an rtmp:\/\/ URL/);
    refused('rtmp { server { application a { push rtmps://x/y; } } }', ErrorCode.ConfigUnsupported, /rtmps/);
    refused('rtmp { server { application a { push rtmp://h/a foo=bar; } } }', ErrorCode.ConfigBadValue, /^t\.conf:1:49: invalid value "foo=bar" in "push" directive: unsupported relay parameter/);
    refused('rtmp { server { application a { push rtmp://h/a live=yes; } } }', ErrorCode.ConfigBadValue, /"live" takes a number/);
    refused('rtmp { server { application a { push rtmp://h/a name=x static; } } }', ErrorCode.ConfigBadValue, /static push is not allowed/);
    refused('rtmp { server { application a { pull rtmp://h/a static; } } }', ErrorCode.ConfigBadValue, /stream name missing in static pull/);
    refused('rtmp { server { application a { push rtmp:///a; } } }', ErrorCode.ConfigBadValue, /in "push" directive/);
    refused('rtmp { server { listen 1935; push rtmp://h/a; } }', ErrorCode.ConfigBadContext, /directive "push" is not allowed here \(in rtmp server; allowed in: application\)/);
  });

  it('reads push_reconnect and session_relay with inheritance', () => {
    const r = app('session_relay on;', 'push_reconnect 10s;').relay;
    assert.deepEqual([r.pushReconnect, r.sessionRelay], [10_000, true]);
    assert.equal(app('pull_reconnect 1500ms;', '').relay.pullReconnect, 1500);
    assert.equal(app('', 'pull_reconnect 7s;').relay.pullReconnect, 7000);
    assert.equal(app('', '').relay.pullReconnect, 3000);
  });
});

describe('exec', () => {
  it('keeps each token as one argv element; quoted tokens stay whole', () => {
    const a = app(String.raw`exec ffmpeg -i "rtmp://localhost/$app/$name" -vf 'scale=640:-1' -f flv x\ y;  exec_push /bin/a; exec_pull /bin/b; exec_play_done /bin/c; exec_publish_done /bin/d;`);
    assert.deepEqual(a.exec.commands, [
      { kind: 'exec', argv: ['ffmpeg', '-i', 'rtmp://localhost/$app/$name', '-vf', 'scale=640:-1', '-f', 'flv', 'x\\ y'] },
      { kind: 'exec_push', argv: ['/bin/a'] },
      { kind: 'exec_pull', argv: ['/bin/b'] },
      { kind: 'exec_play_done', argv: ['/bin/c'] },
      { kind: 'exec_publish_done', argv: ['/bin/d'] },
    ]);
  });

  it('reads kill signals, respawn settings and refuses unknown signals', () => {
    const e = app('exec_kill_signal usr1; respawn off; respawn_timeout 1m;').exec;
    assert.deepEqual([e.killSignal, e.respawn, e.respawnTimeout], ['SIGUSR1', false, 60_000]);
    assert.equal(app('exec_kill_signal 15;').exec.killSignal, 'SIGTERM');
    refused('rtmp { exec_kill_signal nosuch; }', ErrorCode.ConfigBadValue, /expected a signal name/);
  });

  it('collects exec_static lines from every block into one global list', () => {
    const cfg = load('rtmp { exec_static /bin/a; exec_kill_signal hup; server { listen 1; exec_static /bin/b; application x { exec_static /bin/c; } } }');
    assert.deepEqual(
      cfg.execStatic?.commands.map((c) => c.argv[0]),
      ['/bin/a', '/bin/b', '/bin/c'],
    );
    assert.equal(cfg.execStatic?.killSignal, 'SIGHUP');
    assert.deepEqual(cfg.rtmp[0]?.applications[0]?.exec.commands, []);
  });
});

describe('errors', () => {
  it('refuses an unknown directive with file:line:col', () => {
    refused('rtmp {\n  server {\n    listen 1935;\n    bogus_directive on;\n  }\n}', ErrorCode.ConfigUnknownDirective, /^t\.conf:4:5: unknown directive "bogus_directive"$/);
  });

  it('refuses a known directive in the wrong block', () => {
    refused('live on;', ErrorCode.ConfigBadContext, /^t\.conf:1:1: directive "live" is not allowed here \(in main; allowed in: rtmp, rtmp server, application\)$/);
    refused('rtmp { server { application a {\n listen 1935; } } }', ErrorCode.ConfigBadContext, /^t\.conf:2:2: directive "listen" is not allowed here \(in application; allowed in: rtmp server, http server\)$/);
    refused('rtmp { server { application a { timeout 5s; } } }', ErrorCode.ConfigBadContext, /directive "timeout" is not allowed here/);
    refused('rtmp { server { application a { rtmp_stat all; } } }', ErrorCode.ConfigBadContext, /directive "rtmp_stat"/);
    refused('http { server { location / { live on; } } }', ErrorCode.ConfigBadContext, /in location/);
    refused('rtmp { application a { } }', ErrorCode.ConfigBadContext, /directive "application" is not allowed here \(in rtmp; allowed in: rtmp server\)/);
    refused('rtmp { error_log stderr; }', ErrorCode.ConfigBadContext, /directive "error_log"/);
    refused('events { live on; }', ErrorCode.ConfigBadContext, /in events/);
  });

  it('refuses unsupported directives, never ignoring them, and skips their blocks', () => {
    refused('rtmp { server { application a {\n  access_log off; } } }', ErrorCode.ConfigUnsupported, /^t\.conf:2:3: directive "access_log" is not supported yet$/);
    for (const d of ['hls_allow_client_cache on', 'access_log off', 'busy on', 'ssl_certificate a.pem']) {
      const name = d.split(' ')[0] ?? '';
      refused(`rtmp { server { ${d}; } }`, ErrorCode.ConfigUnsupported, new RegExp(`directive "${name}" is not supported yet`));
    }
    // rtmp_stat_stylesheet, flv_live and metrics are supported since issue 16
    const delivery = parseConfigText('http { server { listen 80; location /s { rtmp_stat all; rtmp_stat_stylesheet stat.xsl; } location / { flv_live on; } location /m { metrics; } } }', 't.conf');
    assert.deepEqual(delivery.http[0]?.locations.map((l) => l.delivery), [
      { flvLive: false, metrics: false, statStylesheet: 'stat.xsl' },
      { flvLive: true, metrics: false, statStylesheet: undefined },
      { flvLive: false, metrics: true, statStylesheet: undefined },
    ]);
  });

  it('refuses bad sizes, times, numbers, flags and enums at the argument', () => {
    const cases: [string, RegExp][] = [
      ['chunk_size 4k', /^t\.conf:1:28: invalid value "4k" in "chunk_size" directive: expected a number$/],
      ['chunk_size 100', /"100" in "chunk_size" directive: must be at least 128/],
      ['max_message 1x', /"1x" in "max_message" directive: expected a size/],
      ['max_message 0', /must be at least 1 bytes/],
      ['timeout 10q', /"10q" in "timeout" directive: expected a time/],
      ['ping -1', /"-1" in "ping" directive/],
      ['timeout 30d', /must be at most 2147483647ms/],
      ['live yes', /"yes" in "live" directive: expected "on" or "off"/],
      ['meta maybe', /"maybe" in "meta" directive: expected on, copy, off/],
      ['notify_method put', /expected get, post/],
      ['drop_idle_publisher soon', /expected "off" or a time/],
      ['on_play ftp://x/y', /expected an http:\/\/ URL/],
      ['on_play http://', /on_play/],
      ['max_streams 0', /must be at least 1/],
    ];
    for (const [line, re] of cases) refused(`rtmp { server { ${line}; } }`, ErrorCode.ConfigBadValue, re);
  });

  it('refuses wrong argument counts, duplicates and block shape mistakes', () => {
    refused('rtmp { live; }', ErrorCode.ConfigBadValue, /^t\.conf:1:8: invalid number of arguments in "live" directive$/);
    refused('rtmp { live on off; }', ErrorCode.ConfigBadValue, /invalid number of arguments/);
    refused('rtmp {\nchunk_size 4096;\nchunk_size 8192; }', ErrorCode.ConfigBadValue, /^t\.conf:3:1: "chunk_size" directive is duplicate \(first set at t\.conf:2:1\)$/);
    refused('rtmp { live on { } }', ErrorCode.ConfigSyntax, /directive "live" is not terminated by ";"/);
    refused('rtmp { server; }', ErrorCode.ConfigSyntax, /directive "server" has no opening "\{"/);
    refused('rtmp { } rtmp { }', ErrorCode.ConfigBadValue, /"rtmp" directive is duplicate/);
    refused('rtmp { server { application a { } application a { } } }', ErrorCode.ConfigBadValue, /duplicate application "a"/);
    // the same directive in different blocks is fine
    assert.equal(app('live on;', 'chunk_size 8192;', 'chunk_size 4096;').live.live, true);
    assert.equal(server('listen 1; chunk_size 8192;', 'chunk_size 4096;').chunkSize, 8192);
  });

  it('lists several errors at once, one per line, each with file:line:col', () => {
    const e = refused(
      'rtmp {\n  server {\n    listen 1935;\n    chunk_size 4k;\n    bogus on;\n    application a {\n      access_log off;\n      live maybe;\n    }\n  }\n}\nlive on;',
      ErrorCode.ConfigBadValue,
      /./,
    );
    assert.deepEqual(e.message.split('\n'), [
      't.conf:4:16: invalid value "4k" in "chunk_size" directive: expected a number',
      't.conf:5:5: unknown directive "bogus"',
      't.conf:7:7: directive "access_log" is not supported yet',
      't.conf:8:12: invalid value "maybe" in "live" directive: expected "on" or "off"',
      't.conf:12:1: directive "live" is not allowed here (in main; allowed in: rtmp, rtmp server, application)',
    ]);
    assert.ok(Array.isArray(e.cause));
    assert.deepEqual(
      (e.cause as ServerError[]).map((x) => x.code),
      [ErrorCode.ConfigBadValue, ErrorCode.ConfigUnknownDirective, ErrorCode.ConfigUnsupported, ErrorCode.ConfigBadValue, ErrorCode.ConfigBadContext],
    );
  });

  it('escapes control characters of names in messages (one line per error)', () => {
    const e = refused('"a\\nb" on;\nx y;', ErrorCode.ConfigUnknownDirective, /^t\.conf:1:1: unknown directive "a\\nb"\nt\.conf:2:1: unknown directive "x"$/);
    assert.equal(e.message.split('\n').length, 2);
  });
});

describe('main context', () => {
  it('reads error_log destination and level', () => {
    assert.deepEqual(load('error_log stderr info;').log, { destination: 'stderr', level: 'info' });
    assert.deepEqual(load('error_log /var/log/rtmp.log warn;').log, { destination: '/var/log/rtmp.log', level: 'warn' });
    assert.deepEqual(load('error_log logs/error.log;').log, { destination: 'logs/error.log', level: 'error' });
    assert.deepEqual(load('error_log /dev/stdout debug;').log, { destination: 'stdout', level: 'debug' });
    assert.deepEqual(load('error_log stderr crit;').log, { destination: 'stderr', level: 'fatal' });
    assert.deepEqual(load('error_log stderr notice;').log, { destination: 'stderr', level: 'info' });
    assert.deepEqual(load('').log, { destination: 'stderr', level: 'info' });
    refused('error_log stderr verbose;', ErrorCode.ConfigBadValue, /"verbose" in "error_log"/);
    refused('error_log syslog:server=10.0.0.1;', ErrorCode.ConfigUnsupported, /"syslog:" logging/);
    assert.deepEqual(load('error_log a.log;\nerror_log b.log info;').warnings.slice(-1), ['t.conf:2:1: several "error_log" directives: only the last one is used']);
  });

  it('checks the inside of events {} and warns once for the block', () => {
    const cfg = load('events {\n  worker_connections 1024;\n  use epoll;\n  multi_accept on;\n}\nrtmp { server { listen 1; } }');
    assert.deepEqual(cfg.warnings, ['t.conf:1:1: directive "events" is ignored']);
    refused('events { worker_connectionz 1024; }', ErrorCode.ConfigUnknownDirective, /worker_connectionz/);
  });

  it('warns when there is no rtmp block or no rtmp server', () => {
    assert.deepEqual(load('').warnings, ['t.conf:1:1: no "rtmp" block: no RTMP server will run']);
    assert.deepEqual(load('\nrtmp { }').warnings, ['t.conf:2:1: "rtmp" block has no "server": no RTMP server will run']);
  });

  it('accepts an application with no live/record settings', () => {
    const a = app('');
    assert.equal(a.name, 'app');
    assert.equal(a.live.live, false);
  });
});

describe('http', () => {
  function http(body: string): ServerConfig['http'] {
    return load(`rtmp { server { listen 1935; } }\nhttp {\n${body}\n}`).http;
  }

  it('inherits root, default_type and add_header from outer blocks only when not set', () => {
    const [h] = http(`
      root /srv;
      add_header X-Http 1;
      server {
        listen 127.0.0.1:8080;
        listen [::1]:8081 default_server;
        add_header X-Server 2;
        default_type text/html;
        location / { }
        location /own { add_header X-Own 3 always; root /own; default_type a/b; types { } }
        location ^~ /media { alias /data/media; }
      }`);
    assert.ok(h);
    assert.deepEqual(h.listen, [
      { host: '127.0.0.1', port: 8080, proxyProtocol: false, ipv6Only: false },
      { host: '::1', port: 8081, proxyProtocol: false, ipv6Only: false },
    ]);
    const [root, own, media] = h.locations;
    assert.deepEqual([root?.root, root?.addHeaders, root?.defaultType, root?.types], ['/srv', [['X-Server', '2']], 'text/html', { html: 'text/html', gif: 'image/gif', jpg: 'image/jpeg' }]);
    assert.deepEqual([own?.root, own?.addHeaders, own?.defaultType, own?.types], ['/own', [['X-Own', '3']], 'a/b', {}]);
    assert.deepEqual([media?.path, media?.exact, media?.alias, media?.root], ['/media', false, '/data/media', undefined]);
  });

  it('listens on *:80 with a warning when a server has no listen', () => {
    const cfg = load('http {\n  server { location / { root /x; } }\n}');
    assert.deepEqual(cfg.http[0]?.listen, [{ host: '0.0.0.0', port: 80, proxyProtocol: false, ipv6Only: false }]);
    assert.ok(cfg.warnings.includes('t.conf:2:3: http server has no "listen" directive: listening on *:80 (the nginx default)'));
  });

  it('refuses regex and named locations, ssl, bad stat modes, duplicates and unknown directives', () => {
    refused('http { server { location ~ \\.m3u8$ { } } }', ErrorCode.ConfigUnsupported, /regular expression locations/);
    refused('http { server { location @fallback { } } }', ErrorCode.ConfigUnsupported, /named locations/);
    refused('http { server { location hls { } } }', ErrorCode.ConfigBadValue, /starts with "\/"/);
    refused('http { server { listen 443 ssl; } }', ErrorCode.ConfigUnsupported, /the "ssl" listen parameter is not supported yet/);
    refused('http { server { location /s { rtmp_stat everything; } } }', ErrorCode.ConfigBadValue, /expected all, global, live, clients, record/);
    refused('http { server { location /c { rtmp_control all nuke; } } }', ErrorCode.ConfigBadValue, /expected all, record, drop, redirect/);
    refused('http { server { location /a { } location /a { } } }', ErrorCode.ConfigBadValue, /duplicate location "\/a"/);
    refused('http { server { location /a { root /x; alias /y; } } }', ErrorCode.ConfigBadValue, /"root" and "alias" cannot both be set/);
    refused('http { server { location /a { proxy_pass http://x; } } }', ErrorCode.ConfigUnknownDirective, /unknown directive "proxy_pass"/);
    refused('http { server { location /a { add_header X-A 1 sometimes; } } }', ErrorCode.ConfigBadValue, /expected "always"/);
    refused('http { server { location /a { add_header "Bad Name" 1; } } }', ErrorCode.ConfigBadValue, /not a valid header name/);
    refused('http { types { text/html; } }', ErrorCode.ConfigBadValue, /"types" entry "text\/html" lists no file extension/);
    refused('http { alias /x; }', ErrorCode.ConfigBadContext, /directive "alias"/);
  });

  it('reads allow/deny as nginx merges them: the innermost block with any line keeps its own, in order', () => {
    const [h] = http(`
      allow 10.0.0.0/8;
      deny all;
      server {
        listen 127.0.0.1:8080;
        location /inherits { rtmp_stat all; }
        location /own { rtmp_control record redirect; deny 127.0.0.1; allow ::1; allow 192.168.0.0/16; }
        location /all { rtmp_control all; }
      }
      server {
        listen 127.0.0.1:8081;
        allow all;
        client_header_timeout 5s;
        send_timeout 2m;
        location /x { }
      }`);
    assert.ok(h);
    const [inherits, own, all] = h.locations;
    assert.deepEqual(inherits?.access, [
      { action: 'allow', address: '10.0.0.0/8' },
      { action: 'deny', address: 'all' },
    ]);
    assert.deepEqual(own?.access, [
      { action: 'deny', address: '127.0.0.1' },
      { action: 'allow', address: '::1' },
      { action: 'allow', address: '192.168.0.0/16' },
    ]);
    assert.deepEqual(own?.controlSections, ['record', 'redirect']);
    assert.deepEqual(all?.controlSections, ['drop', 'record', 'redirect']);
    assert.deepEqual(inherits?.statSections, ['live', 'clients']);
    assert.deepEqual(load('http { server { listen 1; location /a { rtmp_stat global; } location /b { rtmp_stat live; } location /c { rtmp_stat clients live; } } }').http[0]?.locations.map((l) => l.statSections), [[], ['live'], ['live', 'clients']]);
    assert.deepEqual(h.access, inherits?.access, 'requests no location matches use the server\'s rules');
    assert.deepEqual([h.headerTimeout, h.sendTimeout, h.maxConnections], [60_000, 60_000, 1024]);
    const second = load('http { max_connections 10; allow 10.0.0.1; server { listen 8081; allow all; client_header_timeout 5s; send_timeout 2m; location /x { } } }').http[0];
    assert.deepEqual(second?.locations[0]?.access, [{ action: 'allow', address: 'all' }]);
    assert.deepEqual([second?.headerTimeout, second?.sendTimeout, second?.maxConnections], [5000, 120_000, 10]);
    refused('http { server { location /a { allow 10.0.0.300; } } }', ErrorCode.ConfigBadValue, /not an IPv4 or IPv6 address/);
    refused('http { server { location /a { deny play 10.0.0.1; } } }', ErrorCode.ConfigBadValue, /invalid number of arguments/);
    refused('http { server { max_connections 5; } }', ErrorCode.ConfigBadContext, /max_connections/);
  });

  it('reads set_real_ip_from: the server\'s own lines, else the rtmp block\'s', () => {
    const cfg = load('rtmp { set_real_ip_from 10.0.0.0/8; server { listen 1935 proxy_protocol; } server { listen 1936 proxy_protocol; set_real_ip_from 192.0.2.1; set_real_ip_from 2001:db8::/32; } server { listen 1937; } }');
    assert.deepEqual(
      cfg.rtmp.map((s) => s.realIpFrom),
      [['10.0.0.0/8'], ['192.0.2.1', '2001:db8::/32'], ['10.0.0.0/8']],
    );
    assert.deepEqual(load('rtmp { server { listen 1935 proxy_protocol; } }').rtmp[0]?.realIpFrom, []);
    refused('rtmp { server { set_real_ip_from example.com; } }', ErrorCode.ConfigBadValue, /not an IPv4 or IPv6 address/);
    refused('rtmp { server { application a { set_real_ip_from 10.0.0.1; } } }', ErrorCode.ConfigBadContext, /set_real_ip_from/);
  });

  it('accepts and ignores the usual nginx http tuning with warnings', () => {
    const cfg = load('http {\n sendfile on;\n tcp_nodelay on;\n keepalive_timeout 65;\n gzip on;\n access_log off;\n server { listen 8080; server_name example.com; index index.html; } }');
    assert.equal(cfg.warnings.filter((w) => w.endsWith('is ignored')).length, 7);
  });
});

describe('default configuration', () => {
  it('is the embedded nginx-rtmp text: port 1935, one live application', () => {
    assert.match(DEFAULT_CONFIG_TEXT, /listen 1935;/);
    const cfg = defaultConfig();
    assert.equal(cfg.source, DEFAULT_CONFIG_SOURCE);
    assert.deepEqual(cfg.warnings, []);
    assert.equal(cfg.rtmp.length, 1);
    assert.deepEqual(cfg.rtmp[0]?.listen, [{ host: '0.0.0.0', port: 1935, proxyProtocol: false, ipv6Only: false }]);
    assert.equal(cfg.rtmp[0]?.chunkSize, 4096);
    assert.equal(cfg.rtmp[0]?.maxMessage, 15 * 1024 * 1024, 'room for high-bitrate keyframes');
    assert.equal(cfg.rtmp[0]?.directWrite, true);
    assert.deepEqual(
      cfg.rtmp[0]?.applications.map((a) => [a.name, a.live.live, a.live.gopCache]),
      [['live', true, true]],
    );
    assert.deepEqual(cfg.http, []);
    assert.ok(Object.isFrozen(cfg.rtmp[0]?.applications[0]?.live));
  });

  it('takes a port override (0 = any free port) and refuses a bad one', () => {
    assert.equal(defaultConfig(19350).rtmp[0]?.listen[0]?.port, 19350);
    const zero = defaultConfig(0);
    assert.equal(zero.rtmp[0]?.listen[0]?.port, 0);
    assert.ok(Object.isFrozen(zero.rtmp[0]?.listen[0]));
    assert.equal(failure(() => defaultConfig(70000)).code, ErrorCode.ConfigBadValue);
    assert.equal(failure(() => defaultConfig(1.5)).code, ErrorCode.ConfigBadValue);
  });
});
