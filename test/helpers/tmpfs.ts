import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import path from 'node:path';

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

/**
 * Two small file systems under `dir`: `<dir>/<roName>` read-only (EROFS) and `<dir>/<fullName>` of 96 KiB (ENOSPC
 * soon), made and mounted; their paths, or the reason when mounting is not possible here. Unmounted by `unmountAll`.
 */
export function mountReadOnlyAndFull(mounted: string[], dir: string, roName: string, fullName: string): { ro: string; full: string } | string {
  const ro = path.join(dir, roName);
  const full = path.join(dir, fullName);
  mkdirSync(ro);
  mkdirSync(full);
  return mountTmpfs(mounted, ro, 'size=1m,ro') ?? mountTmpfs(mounted, full, 'size=96k') ?? { ro, full };
}
