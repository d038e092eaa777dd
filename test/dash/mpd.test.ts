import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseConfigText } from '../../src/config/load.js';
import { ErrorCode, isServerError } from '../../src/core/errors.js';
import { buildMpd, isoDuration, type MpdDescription } from '../../src/dash/mpd.js';

const BASE: MpdDescription = {
  type: 'dynamic',
  timescale: 1000,
  presentationTimeOffset: 1000,
  availabilityStartTime: Date.UTC(2026, 11, 7, 12, 0, 0, 250),
  publishTime: Date.UTC(2026, 11, 7, 12, 0, 10),
  minimumUpdatePeriod: 2000,
  minBufferTime: 2000,
  timeShiftBufferDepth: 30000,
  tracks: [
    { kind: 'video', codecs: 'avc1.42c00d', bandwidth: 500000, width: 320, height: 240, initialization: 'cam-init.m4v', media: 'cam-$Time$.m4v', segments: [{ t: 1000, d: 2000 }, { t: 3000, d: 2000 }, { t: 5000, d: 2000 }, { t: 7000, d: 1960 }] },
    { kind: 'audio', codecs: 'mp4a.40.2', bandwidth: 64000.4, sampleRate: 44100, channels: 2, initialization: 'cam-init.m4a', media: 'cam-$Time$.m4a', segments: [{ t: 1010, d: 2003 }] },
    { kind: 'audio', codecs: 'x', bandwidth: 1, initialization: 'i', media: 'm', segments: [] },
  ],
};

test('dynamic MPD: the attributes dash.js and ffmpeg need, S@r for runs of equal segments, tracks without segments left out', () => {
  const x = buildMpd(BASE);
  assert.match(x, /^<\?xml version="1.0" encoding="UTF-8"\?>\n<MPD xmlns="urn:mpeg:dash:schema:mpd:2011"/);
  assert.match(x, /type="dynamic"/);
  assert.match(x, /availabilityStartTime="2026-12-07T12:00:00.250Z"/);
  assert.match(x, /publishTime="2026-12-07T12:00:10.000Z"/);
  assert.match(x, /minimumUpdatePeriod="PT2S"/);
  assert.match(x, /timeShiftBufferDepth="PT30S"/);
  assert.match(x, /maxSegmentDuration="PT2.003S"/);
  assert.match(x, /<S t="1000" d="2000" r="2"\/>\n\s*<S t="7000" d="1960"\/>/);
  assert.match(x, /<S t="1010" d="2003"\/>/);
  assert.match(x, /presentationTimeOffset="1000" initialization="cam-init.m4v" media="cam-\$Time\$.m4v"/);
  assert.match(x, /codecs="avc1.42c00d" bandwidth="500000" width="320" height="240"/);
  assert.match(x, /audioSamplingRate="44100"/);
  assert.match(x, /<AudioChannelConfiguration schemeIdUri="urn:mpeg:dash:23003:3:audio_channel_configuration:2011" value="2"\/>/);
  assert.equal(x.match(/<AdaptationSet/g)?.length, 2);
  assert.doesNotMatch(x, /UTCTiming|mediaPresentationDuration/);
});

test('static MPD: a duration from the offset to the last end, no live attributes', () => {
  const x = buildMpd({ ...BASE, type: 'static' });
  assert.match(x, /type="static"/);
  assert.match(x, /mediaPresentationDuration="PT7.96S"/);
  assert.doesNotMatch(x, /availabilityStartTime|minimumUpdatePeriod|timeShiftBufferDepth/);
});

test('clock compensation: one UTCTiming per mode, the URI escaped; off writes none', () => {
  const schemes = { ntp: 'urn:mpeg:dash:utc:ntp:2014', http_head: 'urn:mpeg:dash:utc:http-head:2014', http_iso: 'urn:mpeg:dash:utc:http-iso:2014' } as const;
  for (const [mode, scheme] of Object.entries(schemes)) {
    const x = buildMpd({ ...BASE, clock: { compensation: mode as keyof typeof schemes, uri: 'http://t/?a=1&b="2"' } });
    assert.ok(x.includes(`<UTCTiming schemeIdUri="${scheme}" value="http://t/?a=1&amp;b=&quot;2&quot;"/>`), x);
    assert.ok(x.indexOf('<UTCTiming') > x.indexOf('</Period>'), 'after the Period, as the schema orders it');
  }
  assert.doesNotMatch(buildMpd({ ...BASE, clock: { compensation: 'off', uri: 'x' } }), /UTCTiming/);
  assert.equal(isoDuration(0), 'PT0S');
  assert.equal(isoDuration(1500), 'PT1.5S');
});

function dashOf(body: string): NonNullable<ReturnType<typeof parseConfigText>['rtmp'][number]['applications'][number]['dash']> {
  const c = parseConfigText(`rtmp { ${body} }`, 'dash.conf');
  const d = c.rtmp[0]?.applications[0]?.dash;
  assert.ok(d);
  return d;
}

test('configuration: nginx-rtmp defaults, inheritance from rtmp/server, argument forms; bad values refused', () => {
  const d = dashOf('server { listen 1935; application a { dash on; dash_path /tmp/d; } }');
  assert.deepEqual(d, { enabled: true, path: '/tmp/d', fragment: 5000, playlistLength: 30000, nested: false, cleanup: true, clockCompensation: 'off', clockHelperUri: undefined });
  const i = dashOf('dash_fragment 2s; server { listen 1935; dash_playlist_length 1m; dash_nested on; application a { dash on; dash_path /x; dash_cleanup off; dash_clock_compensation HTTP_ISO; dash_clock_helper_uri http://h/t; } }');
  assert.equal(i.fragment, 2000);
  assert.equal(i.playlistLength, 60000);
  assert.equal(i.nested, true);
  assert.equal(i.cleanup, false);
  assert.equal(i.clockCompensation, 'http_iso');
  assert.equal(i.clockHelperUri, 'http://h/t');
  assert.equal(dashOf('server { listen 1935; application a { } }').enabled, false);
  for (const bad of ['dash_clock_compensation sometimes;', 'dash_fragment 0;', 'dash_fragment soon;', 'dash maybe;', 'dash_path;']) {
    assert.throws(() => parseConfigText(`rtmp { server { listen 1935; application a { ${bad} } } }`, 'bad.conf'), (e) => isServerError(e) && e.code !== ErrorCode.ConfigUnsupported, bad);
  }
});
