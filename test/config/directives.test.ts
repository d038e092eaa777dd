import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { DIRECTIVES, DIRECTIVE_GROUPS, directiveNames, directivesNamed, findDirective } from '../../src/config/directives.js';
import { directiveReferenceMarkdown } from '../../src/config/docs.js';
import { parseFlag, parseSize, parseTime } from '../../src/config/load.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
// a copy of ../shared/reference/nginx-rtmp-directives.md is kept in the repository so this never skips
const REFERENCE = process.env['NGINX_RTMP_REFERENCE'] ?? fileURLToPath(new URL('../../docs/reference/nginx-rtmp-directives.md', import.meta.url));

/** The directive names of the reference: the comma-separated lists of each "- Group: …" bullet. */
function referenceNames(markdown: string): string[] {
  const bullets: string[] = [];
  for (const line of markdown.split('\n')) {
    if (line.startsWith('- ')) bullets.push(line.slice(2));
    else if (/^\s+\S/.test(line) && bullets.length > 0) bullets[bullets.length - 1] += ` ${line.trim()}`;
  }
  const names: string[] = [];
  for (const bullet of bullets) {
    const list = bullet.slice(bullet.lastIndexOf(': ') + 2);
    for (const piece of list.split(',')) {
      const word = piece
        .replace(/\([^)]*\)/g, ' ')
        .trim()
        .split(/\s+/)
        .pop();
      if (word !== undefined && /^[a-z][a-z0-9_]*$/.test(word)) names.push(word);
    }
  }
  return names;
}

/** The directives the brief asks to support now. */
const SUPPORTED_NOW = [
  'rtmp', 'server', 'listen', 'application', 'timeout', 'ping', 'ping_timeout', 'max_streams', 'ack_window', 'chunk_size', 'max_message',
  'buflen', 'out_queue', 'out_cork', 'max_connections', 'so_keepalive', 'live', 'meta', 'interleave', 'wait_key', 'wait_video',
  'publish_notify', 'drop_idle_publisher', 'sync', 'play_restart', 'idle_streams', 'allow', 'deny', 'on_connect', 'on_play', 'on_publish',
  'on_done', 'on_play_done', 'on_publish_done', 'on_record_done', 'on_update', 'notify_update_timeout', 'notify_update_strict',
  'notify_relay_redirect', 'notify_method', 'exec', 'exec_push', 'exec_pull', 'exec_options', 'exec_static', 'exec_kill_signal', 'respawn',
  'respawn_timeout', 'exec_publish', 'exec_play', 'exec_play_done', 'exec_publish_done', 'pull', 'push', 'push_reconnect', 'session_relay',
  'http', 'location', 'root', 'alias', 'add_header', 'types', 'rtmp_stat', 'rtmp_control', 'default_type', 'gop_cache', 'error_log', 'include',
  'dash', 'dash_path', 'dash_fragment', 'dash_playlist_length', 'dash_nested', 'dash_cleanup', 'dash_clock_compensation', 'dash_clock_helper_uri',
];

describe('directive table', () => {
  it('lists every directive of the nginx-rtmp reference', (t) => {
    if (!existsSync(REFERENCE)) {
      t.skip(`reference not found at ${REFERENCE} (set NGINX_RTMP_REFERENCE)`);
      return;
    }
    const names = referenceNames(readFileSync(REFERENCE, 'utf8'));
    assert.ok(names.length > 120, `parsed only ${names.length} names from the reference`);
    for (const sample of ['rtmp', 'listen', 'so_keepalive', 'exec_record_done', 'hls_audio_buffer_size', 'rtmp_stat', 'rtmp_relay_ssl_trusted_certificate']) {
      assert.ok(names.includes(sample), `reference parser missed ${sample}`);
    }
    const missing = names.filter((n) => directivesNamed(n).length === 0);
    assert.deepEqual(missing, []);
  });

  it('marks the directives we run as supported, and the rest of nginx-rtmp as unsupported', () => {
    for (const name of SUPPORTED_NOW) {
      const specs = directivesNamed(name);
      assert.ok(specs.length > 0, name);
      assert.ok(
        specs.some((s) => s.status === 'supported'),
        `${name} should be supported`,
      );
    }
    for (const name of ['record', 'recorder', 'hls_allow_client_cache', 'play', 'access_log', 'ssl_certificate', 'busy', 'play_time_fix', 'publish_time_fix', 'rtmp_auto_push', 'exec_record_done', 'on_record_started', 'on_playlist', 'notify_send_redirect']) {
      const rtmpSide = directivesNamed(name).filter((s) => s.group !== 'HTTP' || name.startsWith('rtmp_'));
      assert.ok(rtmpSide.length > 0, name);
      for (const s of rtmpSide) assert.equal(s.status, 'unsupported', name);
    }
    for (const name of ['worker_processes', 'events', 'pid', 'load_module', 'user', 'worker_rlimit_nofile', 'daemon', 'master_process', 'env', 'thread_pool', 'worker_cpu_affinity', 'working_directory']) {
      assert.equal(findDirective(name, 'main')?.status, 'ignored', name);
    }
  });

  it('has consistent entries: contexts, arity, one spec per name and context, a description', () => {
    for (const s of DIRECTIVES) {
      assert.ok(s.contexts.length > 0, s.name);
      assert.ok(s.description.length > 10, s.name);
      assert.ok(s.maxArgs === undefined || s.minArgs <= s.maxArgs, s.name);
      assert.ok(DIRECTIVE_GROUPS.includes(s.group), s.name);
      if (s.value === 'enum') assert.ok((s.values ?? []).length > 0, s.name);
      for (const c of s.contexts) assert.equal(findDirective(s.name, c), s, `${s.name} has two specs in ${c}`);
    }
    assert.equal(directiveNames().length, new Set(DIRECTIVES.map((s) => s.name)).size);
  });

  it('has defaults the loader can read', () => {
    for (const s of DIRECTIVES) {
      const d = s.default;
      if (d === undefined) continue;
      switch (s.value) {
        case 'flag':
          assert.notEqual(parseFlag(d), undefined, s.name);
          break;
        case 'number':
          assert.match(d, /^\d+$/, s.name);
          break;
        case 'size':
          assert.notEqual(parseSize(d), undefined, s.name);
          break;
        case 'time':
          assert.notEqual(parseTime(d), undefined, s.name);
          break;
        case 'time_or_off':
          assert.ok(d === 'off' || parseTime(d) !== undefined, s.name);
          break;
        case 'enum':
          assert.ok(s.values?.includes(d), s.name);
          break;
        default:
          break;
      }
    }
    const defaults = Object.fromEntries(DIRECTIVES.filter((s) => s.contexts.includes('server') || s.contexts.includes('application')).map((s) => [s.name, s.default]));
    assert.deepEqual(
      [defaults['chunk_size'], defaults['timeout'], defaults['ping'], defaults['ping_timeout'], defaults['max_streams'], defaults['ack_window'], defaults['max_message']],
      ['4096', '60s', '60s', '30s', '32', '5000000', '1m'],
    );
    assert.deepEqual(
      [defaults['out_queue'], defaults['buflen'], defaults['max_connections'], defaults['meta'], defaults['live'], defaults['notify_method'], defaults['notify_update_timeout']],
      ['256', '1000ms', '0', 'on', 'off', 'post', '30s'],
    );
    assert.deepEqual(
      [defaults['push_reconnect'], defaults['exec_kill_signal'], defaults['respawn'], defaults['respawn_timeout'], defaults['gop_cache'], defaults['sync']],
      ['3s', 'kill', 'on', '5s', 'on', '300ms'],
    );
  });
});

describe('directive reference', () => {
  const md = directiveReferenceMarkdown();

  it('has one table per group with a row for every directive', () => {
    for (const group of DIRECTIVE_GROUPS) assert.match(md, new RegExp(`\\n## ${group}\\n\\n\\| directive \\| context \\| default \\| supported \\| description \\|\\n`));
    const rows = md.split('\n').filter((l) => l.startsWith('| `'));
    assert.equal(rows.length, DIRECTIVES.length);
    assert.ok(rows.includes('| `chunk_size` | rtmp, server | `4096` | yes | Outgoing chunk size the server announces (at least 128). |'));
    assert.ok(rows.some((r) => r.startsWith('| `hls` | rtmp, server, application | `off` | yes |')));
    assert.ok(rows.some((r) => r.startsWith('| `hls_allow_client_cache` | rtmp, server, application | — | no (refused) |')));
    assert.ok(rows.some((r) => r.startsWith('| `worker_processes` | main | — | ignored (warning) |')));
    assert.ok(rows.every((r) => r.split(/(?<!\\)\|/).length === 7), 'a | inside a cell is escaped');
  });

  it('is what docs/directives.md holds (regenerate with scripts/directives-doc.ts --write)', () => {
    assert.equal(readFileSync(join(ROOT, 'docs', 'directives.md'), 'utf8'), md);
  });

  it('is linked from the README, which stays under 12 KB (the reference lives in docs/)', () => {
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    assert.ok(readme.includes('](docs/directives.md)'), 'the README links the directive reference');
    assert.ok(Buffer.byteLength(readme) <= 12 * 1024, `README.md is ${Buffer.byteLength(readme)} bytes`);
  });
});
