import { outputPath } from '../core/files.js';

/**
 * Recording file names, nginx-rtmp's: `record_path/NAME[-UNIQUE]SUFFIX`, with
 * UNIQUE the Unix time in seconds (`record_unique on`) and SUFFIX passed
 * through strftime when it holds a `%`. Every name goes through outputPath:
 * a hostile stream name or suffix (`..`, `/`, `\`, NUL, a name too long for
 * the file system) is refused, never written outside record_path.
 */

const pad = (n: number, w = 2): string => String(n).padStart(w, '0');
const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

function dayOfYear(d: Date): number {
  const start = new Date(d.getFullYear(), 0, 1);
  return Math.floor((d.getTime() - start.getTime()) / 86_400_000) + 1;
}

/** strftime over the local time: %Y %y %m %d %e %H %I %M %S %p %j %a %b %F %T %s %z %%; another conversion stays as written. */
export function strftime(pattern: string, d: Date): string {
  return pattern.replace(/%([A-Za-z%])/g, (all, c: string) => {
    switch (c) {
      case 'Y':
        return String(d.getFullYear());
      case 'y':
        return pad(d.getFullYear() % 100);
      case 'm':
        return pad(d.getMonth() + 1);
      case 'd':
        return pad(d.getDate());
      case 'e':
        return String(d.getDate()).padStart(2, ' ');
      case 'H':
        return pad(d.getHours());
      case 'I':
        return pad(d.getHours() % 12 === 0 ? 12 : d.getHours() % 12);
      case 'M':
        return pad(d.getMinutes());
      case 'S':
        return pad(d.getSeconds());
      case 'p':
        return d.getHours() < 12 ? 'AM' : 'PM';
      case 'j':
        return pad(dayOfYear(d), 3);
      case 'a':
        return DAYS[d.getDay()] ?? '';
      case 'b':
        return MONTHS[d.getMonth()] ?? '';
      case 'F':
        return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
      case 'T':
        return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
      case 's':
        return String(Math.floor(d.getTime() / 1000));
      case 'z': {
        const off = -d.getTimezoneOffset();
        const a = Math.abs(off);
        return `${off < 0 ? '-' : '+'}${pad(Math.floor(a / 60))}${pad(a % 60)}`;
      }
      case '%':
        return '%';
      default:
        return all;
    }
  });
}

export interface RecordNameSettings {
  readonly path: string;
  readonly suffix: string;
  readonly unique: boolean;
}

/**
 * The file of one recording piece. `forceUnique` gives a piece after the
 * first its own name when record_unique is off (this server never overwrites
 * an earlier piece of the same recording); `taken` are the files this
 * recording already used: a clash (two pieces in one second) gets `-2`, `-3`...
 * Throws ERR_OUTPUT_PATH_UNSAFE for a name that would leave record_path.
 */
export function recordFilePath(s: RecordNameSettings, name: string, when: Date, forceUnique: boolean, taken: ReadonlySet<string>): string {
  const suffix = s.suffix.includes('%') ? strftime(s.suffix, when) : s.suffix;
  const stem = s.unique || forceUnique ? `${name}-${Math.floor(when.getTime() / 1000)}` : name;
  let file = outputPath(s.path, `${stem}${suffix}`);
  for (let n = 2; taken.has(file); n++) file = outputPath(s.path, `${stem}-${n}${suffix}`);
  return file;
}
