import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { memoryLogger, silentLogger, type MemoryLogEntry } from '../../src/core/log.js';
import type { HttpLocation, HttpServerConfig } from '../../src/config/types.js';
import { HttpFrontend, type RtmpStatusSource, type StatSnapshot } from '../../src/http/server.js';
import { describeAudio, describeVideo, xmlEscape } from '../../src/http/stat.js';
import { FlvTagType, readFlvFile } from '../../src/media/flv.js';
import { parseAudioTag } from '../../src/media/audio.js';
import { parseVideoTag } from '../../src/media/video.js';
import type { RtmpServer } from '../../src/server.js';
import { ffmpegPath } from '../helpers/ffmpeg.js';

// Compile-time: the RTMP server can be handed to the HTTP front end as it is.
const serverIsASource = (s: RtmpServer): RtmpStatusSource => s;
void serverIsASource;

function loc(p: Partial<HttpLocation> & { path: string }): HttpLocation {
  return { root: undefined, alias: undefined, rtmpStat: false, rtmpControl: false, addHeaders: [], types: {}, exact: false, defaultType: 'text/plain', ...p };
}

async function start(t: TestContext, source: RtmpStatusSource, logs?: MemoryLogEntry[]): Promise<string> {
  const cfg: HttpServerConfig = {
    listen: [{ host: '127.0.0.1', port: 0, proxyProtocol: false }],
    locations: [loc({ path: '/stat', rtmpStat: true, addHeaders: [['X-Stat', '1']] })],
  };
  const fe = new HttpFrontend([cfg], { source, logger: logs === undefined ? silentLogger() : memoryLogger(logs) });
  await fe.start();
  t.after(() => fe.stop());
  return `http://127.0.0.1:${fe.addresses()[0]!.port}`;
}

/** Real H.264 High 3.1 640x360 + AAC-LC 44.1 kHz stereo sequence headers, from an FLV ffmpeg writes. */
async function realHeaders(t: TestContext): Promise<{ video: Buffer; audio: Buffer }> {
  const dir = await mkdtemp(path.join(tmpdir(), 'http-stat-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'a.flv');
  await promisify(execFile)(await ffmpegPath(), [
    '-hide_banner', '-loglevel', 'error', '-y',
    '-f', 'lavfi', '-i', 'testsrc=size=640x360:rate=25',
    '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=44100',
    '-t', '0.2', '-pix_fmt', 'yuv420p', '-c:v', 'libx264', '-profile:v', 'high', '-level', '3.1',
    '-c:a', 'aac', '-ac', '2', '-f', 'flv', file,
  ], { timeout: 60_000 });
  const { tags } = readFlvFile(await readFile(file));
  const video = tags.find((x) => x.type === FlvTagType.Video && parseVideoTag(x.data).isSequenceHeader)?.data;
  const audio = tags.find((x) => x.type === FlvTagType.Audio && parseAudioTag(x.data).isSequenceHeader)?.data;
  assert.ok(video && audio, 'ffmpeg wrote both sequence headers');
  return { video: Buffer.from(video), audio: Buffer.from(audio) };
}

const HOSTILE = '</flashver><evil attr="x">&amp;\'"\u0001\u0000]]>';

function snapshot(video: Buffer | undefined, audio: Buffer | undefined, now: number, bytesIn: number): StatSnapshot {
  return {
    startedAt: now - 3_600_500,
    now,
    connections: [
      {
        id: 'a1', remoteAddress: '10.0.0.1', app: 'live', flashVer: HOSTILE, swfUrl: 'http://x/p.swf?a=1&b=2', pageUrl: '', tcUrl: 'rtmp://h/live',
        connectedAt: now - 5000, bytesIn, bytesOut: 3000, streams: [{ streamId: 1, name: 'cam<1>&', role: 'publisher' }],
      },
      {
        id: 'b2', remoteAddress: '10.0.0.2', app: 'live', flashVer: 'LNX 9,0,124,2', swfUrl: '', pageUrl: '', tcUrl: 'rtmp://h/live',
        connectedAt: now - 2000, bytesIn: 500, bytesOut: 40_000, streams: [{ streamId: 1, name: 'cam<1>&', role: 'player' }],
      },
      {
        id: 'c3', remoteAddress: '10.0.0.3', app: 'other', flashVer: '', swfUrl: '', pageUrl: '', tcUrl: 'rtmp://h/other',
        connectedAt: now - 100, bytesIn: 100, bytesOut: 100, streams: [],
      },
    ],
    streams: [
      {
        app: 'live', name: 'cam<1>&', active: true, publisher: 'a1', readers: 1, hasVideo: true, hasAudio: true, publishedAt: now - 4000,
        bytesIn, framesIn: 200, videoFrames: 100, audioFrames: 100, dropped: 0, videoHeader: video, audioHeader: audio,
      },
    ],
  };
}

/** A small XML well-formedness check: balanced tags, no raw '<' or stray '&' in text. */
function assertWellFormed(xml: string): void {
  const body = xml.replace(/^<\?xml[^?]*\?>\s*/, '');
  const stack: string[] = [];
  let pos = 0;
  for (const m of body.matchAll(/<[^>]*>/g)) {
    const text = body.slice(pos, m.index);
    assert.ok(!/[<>]/.test(text), `raw markup char in text ${JSON.stringify(text)}`);
    assert.ok(!/&(?!(amp|lt|gt|quot|apos);)/.test(text), `stray & in ${JSON.stringify(text)}`);
    // eslint-disable-next-line no-control-regex
    assert.ok(!/[\u0000-\u0008\u000b\u000c\u000e-\u001f]/.test(text), 'control character in text');
    const tag = m[0];
    const name = /^<\/?([A-Za-z_][\w.-]*)/.exec(tag)?.[1];
    assert.ok(name !== undefined, `bad tag ${tag}`);
    assert.ok(/^<\/?[A-Za-z_][\w.-]*\/?>$/.test(tag), `unexpected tag ${tag}`);
    if (tag.startsWith('</')) assert.equal(stack.pop(), name, `mismatched ${tag}`);
    else if (!tag.endsWith('/>')) stack.push(name);
    pos = m.index + tag.length;
  }
  assert.deepEqual(stack, []);
  assert.equal(body.slice(pos).trim(), '');
}

function el(xml: string, name: string): string | undefined {
  return new RegExp(`<${name}>([^<]*)</${name}>`).exec(xml)?.[1];
}

test('stat XML: nginx-rtmp layout, codec details from real sequence headers, escaping', async (t) => {
  const { video, audio } = await realHeaders(t);
  const base = await start(t, { snapshot: () => snapshot(video, audio, Date.now(), 10_000), dropConnection: () => false });
  const r = await fetch(`${base}/stat`);
  assert.equal(r.status, 200);
  assert.equal(r.headers.get('content-type'), 'text/xml');
  assert.equal(r.headers.get('x-stat'), '1', 'add_header applies to the stat location');
  const xml = await r.text();
  assertWellFormed(xml);
  assert.ok(xml.startsWith('<?xml version="1.0" encoding="utf-8" ?>\r\n<rtmp>'));
  assert.equal(el(xml, 'pid'), String(process.pid));
  assert.equal(el(xml, 'uptime'), '3600');
  assert.ok(el(xml, 'nginx_rtmp_version'));
  assert.ok(el(xml, 'built'));
  for (const name of ['naccepted', 'bw_in', 'bytes_in', 'bw_out', 'bytes_out']) assert.match(el(xml, name) ?? '', /^\d+$/, name);

  // structure: rtmp > server > application > live > stream > client / meta
  const app = /<server>\r\n<application>\r\n<name>live<\/name>\r\n<live>\r\n<stream>([\s\S]*?)<\/stream>/.exec(xml);
  assert.ok(app, 'application live with a stream');
  const stream = app[1]!;
  assert.equal(el(stream, 'name'), 'cam&lt;1&gt;&amp;');
  assert.equal(el(stream, 'bytes_in'), '10000');
  assert.equal(el(stream, 'bytes_out'), '40000', 'the players\' bytes out');
  assert.equal(el(stream, 'nclients'), '2');
  assert.match(stream, /<publishing\/>\r\n<active\/>\r\n$/);
  for (const name of ['time', 'bw_in', 'bw_out', 'bw_audio', 'bw_video']) assert.match(el(stream, name) ?? '', /^\d+$/, name);

  const clients = [...stream.matchAll(/<client>([\s\S]*?)<\/client>/g)].map((m) => m[1]!);
  assert.equal(clients.length, 2);
  const [pub, player] = clients as [string, string];
  assert.equal(el(pub, 'id'), 'a1');
  assert.equal(el(pub, 'address'), '10.0.0.1');
  assert.ok(pub.includes('<publishing/>') && pub.includes('<active/>'));
  assert.equal(el(pub, 'swfurl'), 'http://x/p.swf?a=1&amp;b=2');
  assert.equal(el(pub, 'pageurl'), undefined, 'empty pageurl is left out, as nginx-rtmp does');
  assert.equal(el(pub, 'flashver'), '&lt;/flashver&gt;&lt;evil attr=&quot;x&quot;&gt;&amp;amp;&apos;&quot;  ]]&gt;');
  assert.ok(!xml.includes('<evil'), 'the hostile flashver cannot open an element');
  assert.equal(el(player, 'id'), 'b2');
  assert.ok(!player.includes('<publishing/>'));
  assert.equal(el(player, 'flashver'), 'LNX 9,0,124,2');
  for (const c of clients) for (const name of ['time', 'dropped', 'timestamp']) assert.match(el(c, name) ?? '', /^\d+$/, name);

  const meta = /<meta><video>([\s\S]*?)<\/video><audio>([\s\S]*?)<\/audio><\/meta>/.exec(stream);
  assert.ok(meta, 'meta with video and audio');
  const [, v = '', a = ''] = meta;
  assert.equal(el(v, 'width'), '640');
  assert.equal(el(v, 'height'), '360');
  assert.equal(el(v, 'codec'), 'H264');
  assert.equal(el(v, 'profile'), 'High');
  assert.equal(el(v, 'level'), '3.1');
  assert.match(el(v, 'compat') ?? '', /^\d+$/);
  assert.equal(el(v, 'frame_rate'), '25', '100 frames in the 4 s since the publish');
  assert.equal(el(a, 'codec'), 'AAC');
  assert.equal(el(a, 'profile'), 'LC');
  assert.equal(el(a, 'channels'), '2');
  assert.equal(el(a, 'sample_rate'), '44100');

  // an application with a client but no stream is listed too
  assert.match(xml, /<application>\r\n<name>other<\/name>\r\n<live>\r\n<nclients>0<\/nclients>/);
  // HEAD: headers only
  const h = await fetch(`${base}/stat`, { method: 'HEAD' });
  assert.equal(h.status, 200);
  assert.equal(await h.text(), '');
});

test('stat JSON (?format=json): the same tree', async (t) => {
  const { video, audio } = await realHeaders(t);
  const base = await start(t, { snapshot: () => snapshot(video, audio, Date.now(), 10_000), dropConnection: () => false });
  const r = await fetch(`${base}/stat?format=json`);
  assert.equal(r.status, 200);
  assert.match(r.headers.get('content-type') ?? '', /^application\/json/);
  const body = (await r.json()) as {
    rtmp: {
      pid: number;
      uptime: number;
      server: { application: { name: string; live: { nclients: number; stream: { name: string; nclients: number; publishing: boolean; client: { id: string; flashver?: string; publishing: boolean }[]; meta?: { video: { width: number; profile?: string }; audio: { sample_rate?: number; channels?: number } } }[] } }[] }[];
    };
  };
  assert.equal(body.rtmp.pid, process.pid);
  assert.equal(body.rtmp.uptime, 3600);
  const live = body.rtmp.server[0]?.application.find((x) => x.name === 'live');
  assert.ok(live);
  assert.equal(live.live.nclients, 2);
  const s = live.live.stream[0];
  assert.ok(s);
  assert.equal(s.name, 'cam<1>&', 'JSON carries the raw name');
  assert.equal(s.publishing, true);
  assert.deepEqual(s.client.map((c) => [c.id, c.publishing]), [['a1', true], ['b2', false]]);
  assert.equal(s.client[0]?.flashver, HOSTILE);
  assert.equal(s.meta?.video.width, 640);
  assert.equal(s.meta?.video.profile, 'High');
  assert.equal(s.meta?.audio.sample_rate, 44100);
  assert.equal(s.meta?.audio.channels, 2);
});

test('bandwidths: byte deltas between two requests (first request 0)', async (t) => {
  let now = 1_000_000;
  let bytes = 10_000;
  const base = await start(t, { snapshot: () => snapshot(undefined, undefined, now, bytes), dropConnection: () => false });
  const first = await (await fetch(`${base}/stat`)).text();
  assert.equal(el(first, 'bw_in'), '0', 'global, first request');
  assert.equal(el(/<stream>[\s\S]*<\/stream>/.exec(first)![0], 'bw_in'), '0');
  now += 2000;
  bytes += 250_000; // 125 000 B/s = 1 000 000 bit/s
  const second = await (await fetch(`${base}/stat`)).text();
  const stream = /<stream>[\s\S]*<\/stream>/.exec(second)![0];
  assert.equal(el(stream, 'bw_in'), '1000000');
  assert.equal(el(stream, 'bytes_in'), '260000');
  assert.equal(el(second, 'bw_in'), '1000000', 'global: the sum over connections changed by as much');
  // no change: 0 again
  now += 1000;
  const third = await (await fetch(`${base}/stat`)).text();
  assert.equal(el(/<stream>[\s\S]*<\/stream>/.exec(third)![0], 'bw_in'), '0');
  // without codec headers the meta still has the video sizes (0) and no codec
  assert.match(stream, /<meta><video><width>0<\/width><height>0<\/height><frame_rate>\d+<\/frame_rate><\/video><audio><\/audio><\/meta>/);
});

test('a failing snapshot answers 500, is logged, and the server keeps serving', async (t) => {
  const logs: MemoryLogEntry[] = [];
  let fail = true;
  const base = await start(
    t,
    {
      snapshot: () => {
        if (fail) throw new Error('boom');
        return { startedAt: 0, now: 0, connections: [], streams: [] };
      },
      dropConnection: () => false,
    },
    logs,
  );
  const r = await fetch(`${base}/stat`);
  assert.equal(r.status, 500);
  assert.equal(r.headers.get('x-stat'), null);
  await r.text();
  assert.ok(logs.some((e) => e.level === 'error' && e.fields['err'] === 'boom'));
  fail = false;
  const ok = await fetch(`${base}/stat`);
  assert.equal(ok.status, 200);
  assert.match(await ok.text(), /<server>\r\n<\/server>/);
  const lines = logs.filter((e) => e.level === 'debug' && e.msg === 'http request');
  assert.equal(lines.length, 2, 'one debug line per request');
  assert.deepEqual(
    lines.map((e) => [e.fields['method'], e.fields['path'], e.fields['status'], typeof e.fields['ms']]),
    [['GET', '/stat', 500, 'number'], ['GET', '/stat', 200, 'number']],
  );
});

test('describeVideo / describeAudio: legacy codecs, malformed headers never throw', () => {
  // MP3, 44 kHz, 16 bit, stereo (legacy header only)
  assert.deepEqual(describeAudio(Buffer.from([0x2f, 0xff])), { codec: 'MP3', channels: 2, sample_rate: 44100 });
  // Speex mono
  assert.equal(describeAudio(Buffer.from([0xb2])).codec, 'Speex');
  // AAC sequence header whose AudioSpecificConfig is cut short: the codec only
  assert.deepEqual(describeAudio(Buffer.from([0xaf, 0x00])), { codec: 'AAC', channels: 2, sample_rate: 44100 });
  // HE-AAC (objectType 5, 24 kHz core, stereo): 00101 0110 0010 ...
  assert.equal(describeAudio(Buffer.from([0xaf, 0x00, 0x2b, 0x10])).profile, 'HE');
  assert.deepEqual(describeAudio(Buffer.alloc(0)), {});
  assert.deepEqual(describeAudio(undefined), {});
  // On2 VP6 keyframe
  assert.deepEqual(describeVideo(Buffer.from([0x14, 0x00])), { width: 0, height: 0, codec: 'On2-VP6' });
  // AVC sequence header with a broken record: codec known, sizes 0
  assert.deepEqual(describeVideo(Buffer.from([0x17, 0x00, 0, 0, 0, 0x09])), { width: 0, height: 0, codec: 'H264' });
  assert.deepEqual(describeVideo(Buffer.from([0xff])), { width: 0, height: 0 });
});

test('xmlEscape: markup characters and characters XML cannot carry', () => {
  assert.equal(xmlEscape(`<a href="x">&'`), '&lt;a href=&quot;x&quot;&gt;&amp;&apos;');
  assert.equal(xmlEscape('a\u0000b\u001fc\td\ne'), 'a b c\td\ne');
  assert.equal(xmlEscape('x\ud800y\udc00z'), 'x y z', 'lone surrogates');
  assert.equal(xmlEscape('caméra 📷'), 'caméra 📷', 'valid Unicode is kept');
});
