import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseConfigText } from '../../src/config/load.js';
import type { HlsSettings } from '../../src/config/hls.js';

function hls(rtmpBody: string, appBody: string): HlsSettings {
  const cfg = parseConfigText(`rtmp { ${rtmpBody} server { listen 1935; application live { ${appBody} } } }`, 'hls.conf');
  const s = cfg.rtmp[0]?.applications[0]?.hls;
  assert.ok(s !== undefined);
  return s;
}

test('hls directives: nginx-rtmp defaults', () => {
  const s = hls('', 'hls on; hls_path /tmp/h;');
  assert.equal(s.enabled, true);
  assert.equal(s.path, '/tmp/h');
  assert.equal(s.fragment, 5000);
  assert.equal(s.maxFragment, 50_000);
  assert.equal(s.playlistLength, 30_000);
  assert.equal(s.sync, 2);
  assert.equal(s.continuous, true);
  assert.equal(s.nested, false);
  assert.equal(s.cleanup, true);
  assert.equal(s.naming, 'sequential');
  assert.equal(s.slicing, 'plain');
  assert.equal(s.type, 'live');
  assert.equal(s.keys, false);
  assert.equal(s.keyPath, '/tmp/h');
  assert.equal(s.maxAudioDelay, 300);
  assert.equal(s.audioBufferSize, 1024 * 1024);
  assert.deepEqual(s.variants, []);
  assert.equal(hls('', 'live on;').enabled, false);
});

test('hls directives: every one read, inherited from rtmp {}', () => {
  const s = hls(
    'hls on; hls_fragment 3s; hls_playlist_length 1m;',
    `hls_path /var/hls; hls_max_fragment 9s; hls_sync 5ms; hls_continuous off; hls_nested on; hls_base_url http://cdn/; hls_cleanup off;
     hls_fragment_naming timestamp; hls_fragment_naming_granularity 1000; hls_fragment_slicing aligned; hls_type event;
     hls_keys on; hls_key_path /var/keys; hls_key_url https://k/; hls_fragments_per_key 4; hls_max_audio_delay 100ms; hls_audio_buffer_size 64k;
     hls_variant _hi BANDWIDTH=1000000 RESOLUTION=1280x720; hls_variant _lo BANDWIDTH=200000;`,
  );
  assert.equal(s.enabled, true);
  assert.equal(s.fragment, 3000);
  assert.equal(s.playlistLength, 60_000);
  assert.equal(s.maxFragment, 9000);
  assert.equal(s.sync, 5);
  assert.equal(s.continuous, false);
  assert.equal(s.nested, true);
  assert.equal(s.baseUrl, 'http://cdn/');
  assert.equal(s.cleanup, false);
  assert.equal(s.naming, 'timestamp');
  assert.equal(s.granularity, 1000);
  assert.equal(s.slicing, 'aligned');
  assert.equal(s.type, 'event');
  assert.equal(s.keys, true);
  assert.equal(s.keyPath, '/var/keys');
  assert.equal(s.keyUrl, 'https://k/');
  assert.equal(s.fragmentsPerKey, 4);
  assert.equal(s.maxAudioDelay, 100);
  assert.equal(s.audioBufferSize, 64 * 1024);
  assert.deepEqual(s.variants, [
    { suffix: '_hi', params: ['BANDWIDTH=1000000', 'RESOLUTION=1280x720'] },
    { suffix: '_lo', params: ['BANDWIDTH=200000'] },
  ]);
});

test('hls directives: bad values are refused with their position', () => {
  assert.throws(() => hls('', 'hls maybe;'), /hls/);
  assert.throws(() => hls('', 'hls_fragment_naming random;'), /sequential, timestamp, system/);
  assert.throws(() => hls('', 'hls_fragment_slicing diced;'), /plain, aligned/);
  assert.throws(() => hls('', 'hls_type vod;'), /live, event/);
  assert.throws(() => hls('', 'hls_fragment 10ms;'), /hls_fragment/);
  assert.throws(() => hls('', 'hls_allow_client_cache on;'), /not supported/);
  assert.throws(() => parseConfigText('rtmp { hls_variant _x A=1; server { listen 1935; } }', 'x.conf'), /hls_variant/);
});
