/**
 * Issue 14 ("runtime tricks"): the server's memory must not depend on how it
 * is started, and nothing changes V8's flags once the process runs (Node.js
 * documents that as undefined behaviour). What replaced the tricks is by
 * design (no allocation per player per round: test/rtmp/output-alloc.test.ts);
 * these checks keep the tricks from coming back.
 */
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import test from 'node:test';
import { ROOT } from '../helpers/cli.js';

function sources(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...sources(p));
    else if (e.name.endsWith('.ts')) out.push(p);
  }
  return out;
}

test('no V8 flag is set at run time, no gc is exposed, no object is kept for the JIT', () => {
  const banned: [RegExp, string][] = [
    [/setFlagsFromString/, 'v8.setFlagsFromString (flags after start are undefined behaviour)'],
    [/expose[-_]gc|runInNewContext\(\s*['"]gc['"]/, "V8's gc exposed at run time"],
    [/keepShape|shapeKeeper/, 'objects kept alive for the JIT'],
  ];
  const found: string[] = [];
  for (const file of sources(join(ROOT, 'src'))) {
    const text = readFileSync(file, 'utf8');
    for (const [re, what] of banned) if (re.test(text)) found.push(`${file.slice(ROOT.length)}: ${what}`);
  }
  assert.deepEqual(found, []);
});

test('npm start runs the server as `node dist/cli.js` does: no node flags the other ways of starting it would miss', () => {
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string>; bin: Record<string, string> };
  const start = pkg.scripts['start'] ?? '';
  const run = start.split('&&').map((s) => s.trim()).find((s) => s.startsWith('node '));
  assert.equal(run, `node ${pkg.bin['rtmp-server']}`, `npm start runs "${run ?? start}"`);
});
