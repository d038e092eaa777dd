import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseMediaPlaylist, renderMasterPlaylist, renderMediaPlaylist, targetDuration } from '../../src/hls/playlist.js';

test('media playlist: sequence, honest target duration, discontinuity, keys, event, end', () => {
  const text = renderMediaPlaylist({
    fragments: [
      { seq: 7, uri: 'a-7.ts', durationMs: 5000, discont: false, key: { uri: 'a-7.key', iv: '0'.repeat(31) + '7' } },
      { seq: 8, uri: 'a-8.ts', durationMs: 5040, discont: true, key: { uri: 'a-7.key', iv: '0'.repeat(31) + '7' } },
    ],
    nextSeq: 9,
    discontinuitySeq: 2,
    fragmentMs: 5000,
    event: true,
    ended: true,
  });
  assert.equal(
    text,
    [
      '#EXTM3U',
      '#EXT-X-VERSION:3',
      '#EXT-X-MEDIA-SEQUENCE:7',
      '#EXT-X-TARGETDURATION:6',
      '#EXT-X-DISCONTINUITY-SEQUENCE:2',
      '#EXT-X-PLAYLIST-TYPE:EVENT',
      '#EXT-X-KEY:METHOD=AES-128,URI="a-7.key",IV=0x00000000000000000000000000000007',
      '#EXTINF:5.000,',
      'a-7.ts',
      '#EXT-X-DISCONTINUITY',
      '#EXTINF:5.040,',
      'a-8.ts',
      '#EXT-X-ENDLIST',
      '',
    ].join('\n'),
  );
  assert.equal(targetDuration([], 5000), 5);
  assert.equal(targetDuration([], 500), 1);
  assert.equal(targetDuration([{ seq: 0, uri: 'x', durationMs: 2001, discont: false }], 2000), 3);
  const empty = renderMediaPlaylist({ fragments: [], nextSeq: 4, discontinuitySeq: 0, fragmentMs: 2000, event: false, ended: false });
  assert.ok(empty.includes('#EXT-X-MEDIA-SEQUENCE:4\n'));
});

test('master playlist', () => {
  assert.equal(renderMasterPlaylist([{ uri: 'a_hi.m3u8', params: ['BANDWIDTH=1'] }]), '#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-STREAM-INF:PROGRAM-ID=1,BANDWIDTH=1\na_hi.m3u8\n');
});

test('our playlist reads back (hls_continuous after a restart)', () => {
  const text = renderMediaPlaylist({
    fragments: [
      { seq: 41, uri: 'cam-41.ts', durationMs: 2000, discont: false },
      { seq: 42, uri: 'cam-42.ts', durationMs: 1960, discont: true },
    ],
    nextSeq: 43,
    discontinuitySeq: 0,
    fragmentMs: 2000,
    event: false,
    ended: true,
  });
  assert.deepEqual(parseMediaPlaylist(text), {
    mediaSeq: 41,
    fragments: [
      { seq: 41, uri: 'cam-41.ts', durationMs: 2000, discont: false },
      { seq: 42, uri: 'cam-42.ts', durationMs: 1960, discont: true },
    ],
  });
  assert.deepEqual(parseMediaPlaylist(text.replace(/\n/g, '\r\n'))?.mediaSeq, 41);
});

test('bad playlists on disk are refused, never thrown: foreign, truncated, oversized numbers, random bytes', () => {
  const good = '#EXTM3U\n#EXT-X-MEDIA-SEQUENCE:3\n#EXTINF:2.000,\na-3.ts\n';
  assert.equal(parseMediaPlaylist(''), undefined);
  assert.equal(parseMediaPlaylist('hello'), undefined);
  assert.equal(parseMediaPlaylist('#EXTM3U\n#EXTINF:2.000,\na.ts\n'), undefined, 'no sequence before a fragment');
  assert.equal(parseMediaPlaylist('#EXTM3U\n#EXT-X-MEDIA-SEQUENCE:3\na.ts\n'), undefined, 'a fragment without EXTINF');
  assert.equal(parseMediaPlaylist('#EXTM3U\n#EXT-X-MEDIA-SEQUENCE:99999999999999999999\n'), undefined);
  assert.equal(parseMediaPlaylist('#EXTM3U\n#EXT-X-MEDIA-SEQUENCE:-1\n'), undefined);
  assert.equal(parseMediaPlaylist('#EXTM3U\n#EXT-X-MEDIA-SEQUENCE:1\n#EXTINF:1e300,\na.ts\n'), undefined);
  assert.equal(parseMediaPlaylist('#EXTM3U\n#EXT-X-MEDIA-SEQUENCE:1\n#EXTINF:NaN,\na.ts\n'), undefined);
  for (let cut = 0; cut < good.length; cut++) {
    const r = parseMediaPlaylist(good.slice(0, cut));
    if (r !== undefined) assert.ok(r.fragments.length <= 1);
  }
  const many = '#EXTM3U\n#EXT-X-MEDIA-SEQUENCE:0\n' + '#EXTINF:1,\nx.ts\n'.repeat(10_001);
  assert.equal(parseMediaPlaylist(many), undefined, 'more fragments than a playlist of ours holds');
  let seed = 7;
  const rnd = (): number => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) & 0xff;
  for (let i = 0; i < 500; i++) {
    const bytes = Buffer.from(Array.from({ length: rnd() * 2 }, rnd));
    parseMediaPlaylist('#EXTM3U\n' + bytes.toString('latin1'));
  }
});
