import assert from 'node:assert/strict';
import { outputErrors } from '../../src/core/metrics.js';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { parseConfigText } from '../../src/config/load.js';
import { ErrorCode } from '../../src/core/errors.js';
import { publishArgs, runFfmpeg } from '../helpers/ffmpeg.js';
import { ffprobe, isSyncFlags, readBoxes, readFragment } from '../helpers/mp4.js';
import { sleep, startServer, until, type TestServer } from '../helpers/server.js';

/**
 * Issue 16, DASH: ffmpeg publishes H.264 + AAC over RTMP; the server writes
 * fMP4 fragments and an MPD; ffprobe reads the MPD (file and HTTP) with both
 * streams; our box reader checks every fragment (tfdt continuity per track,
 * a sync sample first); cleanup; a failing disk ends the muxer, not the stream.
 */

interface Started extends TestServer {
  readonly httpBase: string;
  readonly dir: string;
}

async function start(t: TestContext, dashExtra: string): Promise<Started> {
  const root = await mkdtemp(path.join(tmpdir(), 'dash-'));
  t.after(() => rm(root, { recursive: true, force: true }));
  const dir = path.join(root, 'dash');
  const cfg = parseConfigText(
    `rtmp { server { listen 127.0.0.1:0; application live { live on; dash on; dash_path ${dir}; ${dashExtra} } } }
     http { server { listen 127.0.0.1:0; location /dash { root ${root}; } } }`,
    'dash.conf',
  );
  const srv = await startServer(t, cfg);
  const httpPort = srv.server.http?.addresses()[0]?.port;
  assert.ok(httpPort !== undefined);
  return { ...srv, httpBase: `http://127.0.0.1:${httpPort}`, dir };
}

interface ParsedMpd {
  type: string;
  tracks: { mime: string; codecs: string; init: string; media: string; segments: { t: number; d: number }[] }[];
}

/** A small reader of the MPD we write (attributes of AdaptationSet/Representation/SegmentTemplate and the S elements). */
function parseMpd(text: string): ParsedMpd {
  const type = /<MPD[^>]*\stype="(\w+)"/.exec(text)?.[1] ?? '';
  const tracks: ParsedMpd['tracks'] = [];
  for (const m of text.matchAll(/<AdaptationSet[^>]*mimeType="([^"]+)"[\s\S]*?<\/AdaptationSet>/g)) {
    const set = m[0];
    const codecs = /codecs="([^"]+)"/.exec(set)?.[1] ?? '';
    const init = /initialization="([^"]+)"/.exec(set)?.[1] ?? '';
    const media = /media="([^"]+)"/.exec(set)?.[1] ?? '';
    const segments: { t: number; d: number }[] = [];
    for (const s of set.matchAll(/<S t="(\d+)" d="(\d+)"(?: r="(\d+)")?\/>/g)) {
      const t = Number(s[1]);
      const d = Number(s[2]);
      const r = Number(s[3] ?? 0);
      for (let i = 0; i <= r; i++) segments.push({ t: t + i * d, d });
    }
    tracks.push({ mime: m[1]!, codecs, init, media, segments });
  }
  return { type, tracks };
}

/** Polls an async probe until it returns something, or the time is up (undefined). */
async function waitFor<T>(probe: () => Promise<T | undefined>, timeoutMs: number): Promise<T | undefined> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined || Date.now() > end) return v;
    await sleep(100);
  }
}

/** The MPD once `ok` accepts it. */
function mpdWhen(file: string, ok: (m: ParsedMpd, text: string) => boolean, timeoutMs: number): Promise<string | undefined> {
  return waitFor(async () => {
    const text = await readIfThere(file);
    return text !== undefined && ok(parseMpd(text), text) ? text : undefined;
  }, timeoutMs);
}

async function readIfThere(file: string): Promise<string | undefined> {
  try {
    return await readFile(file, 'utf8');
  } catch {
    return undefined;
  }
}

/** Checks every fragment of a track listed in the MPD: tfdt = S@t, sum of durations = S@d, continuity, sync first (video). */
async function checkFragments(dir: string, track: ParsedMpd['tracks'][number], video: boolean): Promise<void> {
  let expected: number | undefined;
  for (const s of track.segments) {
    const file = path.join(dir, track.media.replace('$Time$', String(s.t)));
    const frag = readFragment(await readFile(file));
    assert.equal(frag.trafs.length, 1);
    const tr = frag.trafs[0]!;
    assert.equal(tr.baseDecodeTime, s.t, `${file}: tfdt is the S@t of its name`);
    const d = tr.samples.reduce((n, x) => n + x.duration, 0);
    assert.equal(d, s.d, `${file}: the sample durations add up to S@d`);
    if (expected !== undefined) assert.equal(s.t, expected, `${file}: starts where the previous fragment ended`);
    expected = s.t + s.d;
    assert.ok(tr.samples.length > 0);
    if (video) assert.ok(isSyncFlags(tr.samples[0]!.flags), `${file}: starts with a sync sample`);
    const sizes = tr.samples.reduce((n, x) => n + x.size, 0);
    assert.equal(frag.mdat.size, 8 + sizes, 'the mdat holds exactly the samples');
  }
}

test('ffmpeg publishes H.264+AAC: fragments and a dynamic MPD that ffprobe reads (file and HTTP) with both streams; static MPD at the end; cleanup', async (t) => {
  const srv = await start(t, 'dash_fragment 1s; dash_playlist_length 3s; dash_clock_compensation http_iso; dash_clock_helper_uri https://time.example/iso;');
  const ff = await runFfmpeg(publishArgs(`${srv.url}/live/cam`, 9));
  t.after(() => ff.kill());
  const mpdFile = path.join(srv.dir, 'cam.mpd');
  // a dynamic MPD with both tracks and at least three fragments each
  let latest = await mpdWhen(mpdFile, (m) => m.tracks.length === 2 && m.tracks.every((tr) => tr.segments.length >= 3), 20_000);
  assert.ok(latest !== undefined, 'a dynamic MPD with two tracks and three fragments each');
  const live = parseMpd(latest);
  assert.equal(live.type, 'dynamic');
  assert.match(latest, /availabilityStartTime="\d{4}-\d\d-\d\dT[\d:.]+Z"/);
  assert.match(latest, /<UTCTiming schemeIdUri="urn:mpeg:dash:utc:http-iso:2014" value="https:\/\/time.example\/iso"\/>/);
  const [v, a] = [live.tracks.find((x) => x.mime === 'video/mp4')!, live.tracks.find((x) => x.mime === 'audio/mp4')!];
  assert.match(v.codecs, /^avc1\.[0-9a-f]{6}$/);
  assert.equal(a.codecs, 'mp4a.40.2');
  assert.equal(v.init, 'cam-init.m4v');
  assert.equal(a.media, 'cam-$Time$.m4a');
  assert.ok(v.segments.length <= 3 && a.segments.length <= 3, 'the window is playlist_length / fragment');

  // ffprobe: the MPD over HTTP while live, both streams
  const overHttp = await ffprobe(`${srv.httpBase}/dash/cam.mpd`);
  assert.equal(overHttp.code, 0, overHttp.stderr);
  assert.deepEqual(overHttp.streams.map((s) => s.codec_name).sort(), ['aac', 'h264'], overHttp.stderr);
  assert.equal(overHttp.streams.find((s) => s.codec_type === 'video')?.width, 320);

  // disk stays bounded while live: the window plus one more window (and the fragment being written)
  const live2 = await readdir(srv.dir);
  assert.ok(live2.filter((f) => f.endsWith('.m4v')).length <= 3 * 2 + 1, live2.join(' '));

  const r = await ff.done;
  assert.equal(r.code, 0, r.stderr.slice(-2000));
  // the publisher left: a static MPD
  latest = await mpdWhen(mpdFile, (m) => m.type === 'static', 10_000);
  assert.ok(latest !== undefined, 'a static MPD at the end');
  const end = parseMpd(latest);
  assert.match(latest, /mediaPresentationDuration="PT[\d.]+S"/);
  assert.doesNotMatch(latest, /minimumUpdatePeriod/);
  await checkFragments(srv.dir, end.tracks.find((x) => x.mime === 'video/mp4')!, true);
  await checkFragments(srv.dir, end.tracks.find((x) => x.mime === 'audio/mp4')!, false);
  // the init segments are what their MPD names
  const init = readBoxes(await readFile(path.join(srv.dir, 'cam-init.m4v')));
  assert.deepEqual(init.map((b) => b.type), ['ftyp', 'moov']);

  // ffprobe reads the static MPD from the file too
  const fromFile = await ffprobe(mpdFile);
  assert.equal(fromFile.code, 0, fromFile.stderr);
  assert.deepEqual(fromFile.streams.map((s) => s.codec_name).sort(), ['aac', 'h264']);

  // dash_cleanup: two playlist lengths after the end, the stream's files are gone
  const gone = await waitFor(async () => ((await readdir(srv.dir)).length === 0 ? true : undefined), 12_000);
  assert.ok(gone, `files left: ${(await readdir(srv.dir)).join(' ')}`);
});

test('dash_nested: NAME/index.mpd with init.m4v and <time>.m4v; dash_cleanup off keeps every fragment', async (t) => {
  const srv = await start(t, 'dash_fragment 1s; dash_playlist_length 2s; dash_nested on; dash_cleanup off;');
  const ff = await runFfmpeg(publishArgs(`${srv.url}/live/nest`, 6));
  t.after(() => ff.kill());
  const r = await ff.done;
  assert.equal(r.code, 0, r.stderr.slice(-2000));
  const mpdFile = path.join(srv.dir, 'nest', 'index.mpd');
  const latest = await mpdWhen(mpdFile, (m) => m.type === 'static', 10_000);
  assert.ok(latest !== undefined);
  const mpd = parseMpd(latest);
  const v = mpd.tracks.find((x) => x.mime === 'video/mp4')!;
  assert.equal(v.init, 'init.m4v');
  assert.equal(v.media, '$Time$.m4v');
  assert.ok(v.segments.length <= 2);
  await checkFragments(path.join(srv.dir, 'nest'), v, true);
  const files = await readdir(path.join(srv.dir, 'nest'));
  assert.ok(files.filter((f) => f.endsWith('.m4v') && f !== 'init.m4v').length >= 4, `cleanup off keeps old fragments: ${files.join(' ')}`);
  const probe = await ffprobe(mpdFile);
  assert.deepEqual(probe.streams.map((s) => s.codec_name).sort(), ['aac', 'h264'], probe.stderr);
});

test('a failing disk ends the DASH muxer with one log line (ERR_OUTPUT_WRITE_FAILED); the live stream goes on', async (t) => {
  const srv = await start(t, 'dash_fragment 1s; dash_playlist_length 3s;');
  const ff = await runFfmpeg(publishArgs(`${srv.url}/live/disk`, 8));
  t.after(() => ff.kill());
  assert.ok(await mpdWhen(path.join(srv.dir, 'disk.mpd'), (m) => m.tracks.length > 0, 20_000));
  // the directory becomes a file: every later write fails (ENOTDIR), as on a vanished or read-only volume
  await rm(srv.dir, { recursive: true, force: true });
  await writeFile(srv.dir, 'not a directory');
  const failed = (): number => srv.logs.filter((e) => e.fields['code'] === ErrorCode.OutputWriteFailed && /dash/.test(e.msg)).length;
  assert.ok(await until(() => failed() > 0, 10_000), 'the failure is logged');
  const stream = (): { readers: number; bytesIn: number; active: boolean } | undefined => srv.server.snapshot().streams.find((s) => s.name === 'disk');
  const before = stream()?.bytesIn ?? 0;
  await sleep(1500);
  const after = stream();
  assert.ok(after?.active, 'the stream is still published');
  assert.ok(after.bytesIn > before, 'and still receiving media');
  assert.equal(after.readers, 0, 'the muxer\'s reader is gone');
  assert.equal(failed(), 1, 'one log line');
  assert.equal(outputErrors.get({ output: 'dash', app: 'live' }), 1, 'rtmp_output_errors_total{output="dash"}');
  const r = await ff.done;
  assert.equal(r.code, 0, 'the publisher never noticed');
});

test('the publisher reconnects: the new publish takes the MPD over (dynamic, then static again), the old one\'s cleanup leaves the new files alone', async (t) => {
  const srv = await start(t, 'dash_fragment 1s; dash_playlist_length 2s;');
  const mpdFile = path.join(srv.dir, 'rc.mpd');
  const first = await runFfmpeg(publishArgs(`${srv.url}/live/rc`, 3));
  t.after(() => first.kill());
  assert.equal((await first.done).code, 0);
  const end1 = await mpdWhen(mpdFile, (m) => m.type === 'static', 10_000);
  assert.ok(end1 !== undefined);
  const second = await runFfmpeg(publishArgs(`${srv.url}/live/rc`, 7));
  t.after(() => second.kill());
  // the second publish's own dynamic MPD replaces the static one
  const live2 = await mpdWhen(mpdFile, (m) => m.type === 'dynamic' && m.tracks.length === 2, 15_000);
  assert.ok(live2 !== undefined, 'a dynamic MPD again');
  // the first publish's cleanup (2 x 2 s after it ended) runs while the second is live: the MPD and init segments stay
  await sleep(4500);
  const during = await readdir(srv.dir);
  assert.ok(during.includes('rc.mpd') && during.includes('rc-init.m4v') && during.includes('rc-init.m4a'), during.join(' '));
  const cur = parseMpd((await readIfThere(mpdFile)) ?? '');
  for (const tr of cur.tracks) {
    for (const s of tr.segments) assert.ok(during.includes(tr.media.replace('$Time$', String(s.t))), `${tr.media} ${s.t} listed and on disk`);
  }
  assert.equal((await second.done).code, 0);
  const end2 = await mpdWhen(mpdFile, (m) => m.type === 'static', 10_000);
  assert.ok(end2 !== undefined);
  const m2 = parseMpd(end2);
  await checkFragments(srv.dir, m2.tracks.find((x) => x.mime === 'video/mp4')!, true);
  await checkFragments(srv.dir, m2.tracks.find((x) => x.mime === 'audio/mp4')!, false);
});
