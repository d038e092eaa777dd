import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { loadNativeWriter, NATIVE_WRITER_PATH, type NativeWriter } from '../../src/core/native.js';

const STATUS = join(NATIVE_WRITER_PATH, '..', '..', 'native-status.json');

/** npm install's record of the build: when it built the addon, the addon must load and work. */
function nativeBuildStatus(): { built: boolean; reason?: string } | undefined {
  if (!existsSync(STATUS)) return undefined;
  return JSON.parse(readFileSync(STATUS, 'utf8')) as { built: boolean; reason?: string };
}

/** The addon, or the test is skipped with the build's reason (an addon npm install built must load). */
export function nativeOrSkip(t: TestContext): NativeWriter | undefined {
  const s = nativeBuildStatus();
  const load = loadNativeWriter();
  if (s?.built === true) {
    assert.ok(load.writer !== undefined, `npm install built the addon, but it does not load: ${load.writer === undefined ? load.reason : ''}`);
    return load.writer;
  }
  t.skip(`native writer not built: ${s?.reason ?? 'no build/native-status.json (npm install --ignore-scripts?)'}`);
  return undefined;
}
