/**
 * Six real-world nginx-rtmp configuration shapes (test/config/fixtures/real/,
 * each names its source in a header comment), loaded as `-t` does. Some use
 * directives other outputs implement (hls, dash, record, play,
 * rtmp_stat_stylesheet): for each file the test lists the directives that still
 * stop it today and asserts that list exactly, so a file that starts loading
 * (or a new stopper) shows up here. The lead shortens STOPPERS as those
 * outputs are merged; an empty list means the file loads.
 */
import { strict as assert } from 'node:assert';
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { loadConfigFile, parseConfigText } from '../../src/config/load.js';
import { ServerError } from '../../src/core/errors.js';
import type { ServerConfig } from '../../src/config/types.js';
import { runCli } from '../helpers/cli.js';

const DIR = join(dirname(fileURLToPath(import.meta.url)), 'fixtures', 'real');

/** file → the directive names refused as "not supported yet", in file order, without repeats */
const STOPPERS: Readonly<Record<string, readonly string[]>> = {
  'nginx-rtmp-readme.conf': [],
  'nginx-rtmp-test.conf': [],
  'nginx-rtmp-multiworker.conf': [],
  'tiangolo-nginx-rtmp-docker.conf': [],
  'alfg-docker-nginx-rtmp.conf': [],
  'restream-hls-tutorial.conf': [],
};

interface Outcome {
  readonly stoppers: string[];
  /** errors that are not "not supported yet": always a failure */
  readonly others: string[];
  readonly config: ServerConfig | undefined;
}

function load(file: string): Outcome {
  try {
    return { stoppers: [], others: [], config: loadConfigFile(join(DIR, file)) };
  } catch (e) {
    assert.ok(e instanceof ServerError, `not a ServerError: ${String(e)}`);
    const stoppers: string[] = [];
    const others: string[] = [];
    for (const line of e.message.split('\n')) {
      const m = /directive "([^"]+)" is not supported yet$/.exec(line);
      if (m === null) others.push(line);
      else if (!stoppers.includes(m[1] ?? '')) stoppers.push(m[1] ?? '');
    }
    return { stoppers, others, config: undefined };
  }
}

describe('real-world nginx-rtmp configurations', () => {
  it('has a fixture for every listed file and a list for every fixture', () => {
    assert.deepEqual(readdirSync(DIR).filter((f) => f.endsWith('.conf')).sort(), Object.keys(STOPPERS).sort());
  });

  for (const [file, expected] of Object.entries(STOPPERS)) {
    it(`${file}: stopped today only by ${expected.length === 0 ? 'nothing (it loads)' : expected.join(', ')}`, () => {
      const out = load(file);
      assert.deepEqual(out.others, [], 'errors other than directives waiting for another output');
      assert.deepEqual(out.stoppers, expected);
      if (expected.length === 0) assert.ok(out.config !== undefined);
    });
  }

  it('the multi-worker example loads with one warning each for worker_processes and rtmp_auto_push', () => {
    const cfg = load('nginx-rtmp-multiworker.conf').config;
    assert.ok(cfg !== undefined);
    assert.deepEqual(
      cfg.warnings.map((w) => w.replace(/^.*?:\d+:\d+: /, '')),
      ['directive "worker_processes" is ignored', 'directive "rtmp_auto_push" is ignored'],
    );
    assert.deepEqual(cfg.rtmp[0]?.applications.map((a) => [a.name, a.live.live]), [['mytv', true]]);
  });
});

describe('rtmp-server -t on the real configurations', () => {
  // driven by STOPPERS: every file that loads must pass -t; one that does not must fail naming its first stopper
  const files = Object.entries(STOPPERS);
  const okFiles = files.filter(([, s]) => s.length === 0).map(([f]) => f);
  const badFile = files.find(([, s]) => s.length > 0);

  it('exits 0 for every file that loads, printing its warnings, and 1 naming the stoppers of one that does not', async () => {
    const runs = okFiles.map((f) => ({ f, p: runCli(['-t', '-c', join(DIR, f)]) }));
    const bad = badFile === undefined ? undefined : runCli(['-t', '-c', join(DIR, badFile[0])]);
    for (const { f, p } of runs) {
      const exit = await p.exited;
      assert.equal(exit.code, 0, `${f}: ${p.stderr()}`);
      assert.match(p.stdout(), new RegExp(`configuration .*${f.replace(/\./g, '\\.')} is ok`));
      // only warnings, each naming its directive and position (a file with nothing to ignore prints none)
      for (const line of p.stderr().split('\n').filter((l) => l !== '')) assert.match(line, /^warning: .*:\d+:\d+: /, `${f}: ${line}`);
      if (f === 'nginx-rtmp-multiworker.conf') assert.match(p.stderr(), /^warning: .*:\d+:\d+: directive "worker_processes" is ignored$/m);
    }
    assert.ok(okFiles.includes('nginx-rtmp-multiworker.conf'));
    if (bad !== undefined && badFile !== undefined) {
      const exit = await bad.exited;
      assert.equal(exit.code, 1);
      assert.match(bad.stderr(), new RegExp(`${badFile[0].replace(/\./g, '\\.')}:\\d+:\\d+: directive "${badFile[1][0] ?? ''}" is not supported yet`));
    }
  });
});

describe('include mime.types', () => {
  const text = 'http {\n  include mime.types;\n  server { listen 127.0.0.1:0; location /hls { root /tmp; } }\n}\n';

  it('missing (the usual case outside an nginx install): one warning, the built-in types serve', () => {
    const cfg = parseConfigText(text, '/nowhere/nginx.conf', { readFile: () => { throw Object.assign(new Error('no'), { code: 'ENOENT' }); } });
    assert.deepEqual(cfg.warnings.filter((w) => w.includes('mime.types')), [
      '/nowhere/nginx.conf:2:3: included file "/nowhere/mime.types" does not exist: the built-in MIME types are used (HLS, DASH, FLV, MP4 and common web files)',
    ]);
    assert.equal(cfg.http[0]?.locations[0]?.types['m3u8'], undefined, 'no configured types: the built-in ones apply at serving time');
  });

  it("present: nginx's own mime.types file is read (a types block), other missing includes stay errors", () => {
    const mime = 'types {\n    text/html html htm shtml;\n    application/vnd.apple.mpegurl m3u8;\n    video/mp2t ts;\n    video/mp4 mp4;\n    application/octet-stream bin exe dll;\n}\n';
    const cfg = parseConfigText(text, '/etc/nginx/nginx.conf', { readFile: (p) => { if (p === '/etc/nginx/mime.types') return mime; throw Object.assign(new Error('no'), { code: 'ENOENT' }); } });
    assert.deepEqual(cfg.warnings.filter((w) => w.includes('mime')), []);
    assert.equal(cfg.http[0]?.locations[0]?.types['m3u8'], 'application/vnd.apple.mpegurl');
    assert.equal(cfg.http[0]?.locations[0]?.types['exe'], 'application/octet-stream');
    assert.throws(() => parseConfigText('http { include other.types; }', '/x/nginx.conf', { readFile: () => { throw Object.assign(new Error('no'), { code: 'ENOENT' }); } }), /cannot read included file "\/x\/other\.types" \(ENOENT\)/);
  });
});
