import { execFileSync } from 'node:child_process';

/** A tmpfs with `opts` at `dir` (we run as root in CI); the reason when mounting is not possible here. Unmounted by `unmountAll`. */
export function mountTmpfs(mounted: string[], dir: string, opts: string): string | undefined {
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', opts, 'tmpfs', dir], { stdio: 'pipe' });
  } catch (e) {
    return `mount -t tmpfs failed: ${e instanceof Error ? e.message.split('\n')[0] : String(e)}`;
  }
  mounted.push(dir);
  return undefined;
}

export function unmountAll(mounted: readonly string[]): void {
  for (const dir of mounted) {
    try {
      execFileSync('umount', ['-l', dir], { stdio: 'pipe' });
    } catch {
      // already gone
    }
  }
}
