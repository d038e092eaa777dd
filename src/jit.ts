import { setFlagsFromString } from 'node:v8';

/**
 * V8 optimizes a function once it has run its "interrupt budget" of bytecode a
 * few times (66 KiB by default). The publisher's code runs once per message,
 * ~77 times a second for a 2.6 Mbit/s stream, so with the default budget it
 * stays in baseline code for the first 25-30 s of the server's life, with the
 * optimizing compiler busy beside it (bench/PROFILE.md). With an 8 KiB budget
 * the per-message path is optimized within ~6 s of the start: 6-9 % less CPU
 * per delivered Gbit in the benchmark's 20 s window at 200 players
 * (bench/RESULTS.md).
 *
 * The CLI sets it, not the library: an application that embeds RtmpServer
 * keeps V8 as it has it.
 */
export const JIT_INTERRUPT_BUDGET = 8 * 1024;

/** Sets the budget unless node's own command line names one (that one wins). True when it was set. */
export function tuneJit(execArgv: readonly string[] = process.execArgv): boolean {
  if (execArgv.some((a) => a === '--interrupt-budget' || a.startsWith('--interrupt-budget='))) return false;
  setFlagsFromString(`--interrupt-budget=${JIT_INTERRUPT_BUDGET}`);
  return true;
}
