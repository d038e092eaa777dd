import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { ErrorCode, isServerError } from '../../src/core/errors.js';
import { parseConfigText } from '../../src/config/load.js';
import { recordFilePath, strftime } from '../../src/record/names.js';

const load = (app: string) => parseConfigText(`rtmp { server { listen 1935; application a { ${app} } } }`, 't.conf');
const appOf = (app: string) => load(app).rtmp[0]!.applications[0]!;

test('record config: off loads in every form, modes combine, recorder blocks inherit the application', () => {
  for (const line of ['record off;', '', 'record off; record_path /tmp; record_suffix .x; record_unique on; record_max_size 1m; record_interval 5s;', 'record_path /nowhere; recorder r { record off; }']) {
    assert.deepEqual(appOf(line).record?.recorders, [], line);
  }
  // record off at the server level, as real files have it
  const srv = parseConfigText('rtmp { server { listen 1935; record off; application a { live on; } } }', 't.conf');
  assert.deepEqual(srv.rtmp[0]!.applications[0]!.record?.recorders, []);
  const a = appOf('record audio keyframes manual; record_path /rec; record_max_frames 10; recorder v { record video; record_suffix -%Y.flv; } recorder w { record_path /w; }');
  const [own, v, w] = a.record!.recorders;
  assert.deepEqual([own?.name, own?.audio, own?.video, own?.keyframes, own?.manual, own?.path, own?.maxFrames], ['', true, false, true, true, '/rec', 10]);
  assert.deepEqual([v?.name, v?.audio, v?.video, v?.keyframes, v?.manual, v?.path, v?.suffix, v?.maxFrames], ['v', false, true, false, false, '/rec', '-%Y.flv', 10]);
  // w inherits `record audio keyframes manual`
  assert.deepEqual([w?.name, w?.audio, w?.keyframes, w?.manual, w?.path], ['w', true, true, true, '/w']);
  const lock = load('record all; record_path /r; record_lock on;');
  assert.ok(lock.warnings.some((x) => /record_lock takes no lock/.test(x)));
});

test('record config: bad lines are refused with their position', () => {
  const bad = (app: string, re: RegExp): void =>
    assert.throws(
      () => load(app),
      (e: unknown) => isServerError(e, ErrorCode.ConfigBadValue) || isServerError(e, ErrorCode.ConfigBadContext) ? re.test((e as Error).message) : false,
      app,
    );
  bad('record all;', /record_path is not set/);
  bad('record everything; record_path /r;', /unknown mode "everything"/);
  bad('record off all; record_path /r;', /cannot be combined/);
  bad('record_path /r; recorder r { record all; live on; }', /"live" is not allowed in a "recorder" block/);
  bad('record_path /r; recorder r { recorder s { record all; } }', /cannot be inside another/);
  bad('record_path /r; recorder r { record all; } recorder r { record all; }', /duplicate recorder "r"/);
  bad('record all; record_path /r; record_max_size 1x;', /expected a size/);
  bad('record all; record_path /r; record_interval soon;', /expected "off" or a time/);
});

test('file names: nginx-rtmp form; hostile stream names and suffixes never leave record_path', () => {
  const when = new Date(2026, 0, 2, 3, 4, 5);
  const sec = Math.floor(when.getTime() / 1000);
  const s = { path: '/rec', suffix: '.flv', unique: false };
  assert.equal(recordFilePath(s, 'cam', when, false, new Set()), path.resolve('/rec/cam.flv'));
  assert.equal(recordFilePath({ ...s, unique: true }, 'cam', when, false, new Set()), path.resolve(`/rec/cam-${sec}.flv`));
  assert.equal(recordFilePath(s, 'cam', when, true, new Set()), path.resolve(`/rec/cam-${sec}.flv`));
  assert.equal(recordFilePath(s, 'cam', when, true, new Set([path.resolve(`/rec/cam-${sec}.flv`)])), path.resolve(`/rec/cam-${sec}-2.flv`));
  assert.equal(recordFilePath({ ...s, suffix: '-%Y%m%d-%H%M%S.flv' }, 'cam', when, false, new Set()), path.resolve('/rec/cam-20260102-030405.flv'));
  assert.equal(strftime('%F %T %j %% %Q', when), '2026-01-02 03:04:05 002 % %Q');
  const hostile = ['../etc/passwd', '/abs', 'a/b', 'a\\b', 'nul\u0000x', 'x'.repeat(300), '\u00e9'.repeat(130), 'ctl\u001b', '../..'];
  for (const name of hostile) {
    assert.throws(() => recordFilePath(s, name, when, false, new Set()), (e) => isServerError(e, ErrorCode.OutputPathUnsafe), JSON.stringify(name.slice(0, 20)));
  }
  // Unicode look-alikes and direction marks are bytes, not path syntax: the file stays inside
  // `..` and `.` become `...flv` and `..flv`: names inside record_path
  for (const name of ['..', '.', '\u2215etc', '\u202ecod.exe', '\uff0e\uff0e', '..\u200b']) {
    const file = recordFilePath(s, name, when, false, new Set());
    assert.equal(path.dirname(file), path.resolve('/rec'), name);
  }
  for (const suffix of ['/x.flv', '/../../x', '%Y/%m.flv', '\\x']) {
    assert.throws(() => recordFilePath({ ...s, suffix }, 'cam', when, false, new Set()), (e) => isServerError(e, ErrorCode.OutputPathUnsafe), suffix);
  }
});
