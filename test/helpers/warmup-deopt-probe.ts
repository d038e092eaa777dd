/**
 * Run by test/integration/warmup.test.ts in a child node with --trace-opt,
 * --trace-deopt and --expose-gc: a server warms up (with the CLI's smaller
 * V8 interrupt budget), then two full collections run with no client left.
 * The test reads V8's trace between the markers.
 */
import { setFlagsFromString } from 'node:v8';
import { silentLogger } from '../../src/core/log.js';
import { RtmpServer } from '../../src/server.js';
import { loopbackDefault } from './server.js';

const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) throw new Error('run with --expose-gc');
const server = new RtmpServer(loopbackDefault(), {
  logger: silentLogger(),
  warmup: {
    players: 10,
    messages: 3000,
    begin: () => setFlagsFromString('--interrupt-budget=8192'),
    end: () => setFlagsFromString('--interrupt-budget=67584'),
  },
});
await server.start();
process.stdout.write(`\nPROBE-WARMED ${JSON.stringify(server.warmupReport)}\n`);
gc();
gc();
process.stdout.write('\nPROBE-COLLECTED\n');
await server.stop(500);
