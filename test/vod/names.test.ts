import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { checkPlayName, checkStreamName } from '../../src/app/names.js';
import { ErrorCode, isServerError } from '../../src/core/errors.js';
import { vodFileSegments } from '../../src/vod/locate.js';
import { formatOf } from '../../src/vod/media-file.js';

describe('VOD play names', () => {
  it("map to files as nginx-rtmp's: a prefix picks the format, a missing suffix is added", () => {
    const cases: [string, string][] = [
      ['show', 'show.flv'],
      ['flv:show', 'show.flv'],
      ['mp4:show', 'show.mp4'],
      ['mp4:show.mp4', 'show.mp4'],
      ['show.mp4', 'show.mp4'],
      ['show.MOV', 'show.MOV'],
      ['series/ep1', 'series/ep1.flv'],
      ['mp4:series/ep1.m4v', 'series/ep1.m4v'],
    ];
    for (const [name, file] of cases) {
      checkPlayName(name);
      assert.equal(vodFileSegments(name).join('/'), file, name);
    }
    assert.equal(formatOf('a/b.mp4'), 'mp4');
    assert.equal(formatOf('a/b.flv'), 'flv');
    assert.equal(formatOf('a/b.f4v'), 'mp4');
  });

  it('refuse every form that could leave the play directory', () => {
    const bad = [
      '..', '../x', 'a/../../x', 'mp4:../x.mp4', '/etc/passwd', 'a//b', '.hidden', 'a/.b', 'a\\b', '..\\x', 'a\u0000b', 'a\nb',
      'a/b/c/d/e/f/g/h/i', 'x'.repeat(401), '\uff0e\uff0e/x', '%2e%2e/x', 'a b', 'C:\\x', '',
    ];
    for (const name of bad) {
      assert.throws(() => checkPlayName(name), (e: unknown) => isServerError(e, ErrorCode.StreamNameInvalid), JSON.stringify(name));
    }
    // what passes the play-name check is still checked segment by segment when the file name is made
    for (const name of ['..', 'a/..', 'a\u0000b']) assert.throws(() => vodFileSegments(name), (e: unknown) => isServerError(e));
  });

  it('a VOD name is never a live stream name', () => {
    for (const name of ['mp4:x', 'a/b']) {
      checkPlayName(name);
      assert.throws(() => checkStreamName(name), (e: unknown) => isServerError(e, ErrorCode.StreamNameInvalid));
    }
  });
});
