import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { test } from 'node:test';
import { JIT_INTERRUPT_BUDGET, tuneJit } from '../../src/jit.js';

const run = promisify(execFile);
const jitModule = fileURLToPath(new URL('../../src/jit.ts', import.meta.url));

/**
 * A child node runs a function of some size 400 times from an unoptimizable
 * loop, then asks V8 (natives syntax) whether the optimizing compiler made code
 * for it. With V8's default budget that takes ~1000 calls of this function,
 * with ours ~200: the control run (tuneJit skipped) must stay unoptimized, or
 * the test would not tell the two apart.
 */
const child = `
import { tuneJit } from ${JSON.stringify(jitModule)};
const mode = process.argv[1];
const tuned = mode === 'tuned' ? tuneJit(process.execArgv) : false;
function work(o) {
  let a = o.x * 3 + o.y; let b = (a ^ o.z) >>> 1; let c = b + (o.x > 4 ? o.y : o.z);
  a = (a * 31 + b) | 0; b = (b * 17 + c) | 0; c = (c * 13 + a) | 0;
  a = (a ^ (b << 3)) | 0; b = (b ^ (c >>> 2)) | 0; c = (c ^ (a << 1)) | 0;
  a = (a * 31 + b) | 0; b = (b * 17 + c) | 0; c = (c * 13 + a) | 0;
  a = (a ^ (b << 3)) | 0; b = (b ^ (c >>> 2)) | 0; c = (c ^ (a << 1)) | 0;
  a = (a * 31 + b) | 0; b = (b * 17 + c) | 0; c = (c * 13 + a) | 0;
  return (a + b + c) & 0xffff;
}
function drive(n) { let s = 0; for (let i = 0; i < n; i++) s += work({ x: i & 7, y: i & 3, z: i & 15 }); return s; }
%NeverOptimizeFunction(drive);
drive(400);
const turbofanned = (%GetOptimizationStatus(work) & (1 << 6)) !== 0;
process.stdout.write(JSON.stringify({ tuned, turbofanned }));
`;

async function optimizedAfter400Calls(mode: 'tuned' | 'control', extraArgs: string[] = []): Promise<{ tuned: boolean; turbofanned: boolean }> {
  const args = ['--import', 'tsx', '--allow-natives-syntax', '--no-concurrent-recompilation', ...extraArgs, '--input-type=module', '-e', child, mode];
  const { stdout } = await run(process.execPath, args, { timeout: 30_000 });
  return JSON.parse(stdout) as { tuned: boolean; turbofanned: boolean };
}

test('tuneJit: the smaller interrupt budget makes V8 optimize a hot function after fewer calls', async () => {
  assert.deepEqual(await optimizedAfter400Calls('control'), { tuned: false, turbofanned: false });
  assert.deepEqual(await optimizedAfter400Calls('tuned'), { tuned: true, turbofanned: true });
});

test("tuneJit: a budget on node's command line wins", async () => {
  assert.equal(tuneJit(['--interrupt-budget=67584']), false);
  assert.equal(tuneJit(['--interrupt-budget', '67584']), false);
  // the child was started with V8's default budget spelled out: tuneJit leaves it, and the function stays cold
  assert.deepEqual(await optimizedAfter400Calls('tuned', ['--interrupt-budget=67584']), { tuned: false, turbofanned: false });
  assert.ok(JIT_INTERRUPT_BUDGET > 0 && JIT_INTERRUPT_BUDGET < 67584);
});
