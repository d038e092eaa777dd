/**
 * The recording section of an application (nginx-rtmp's record module):
 * `record`, `record_path`, `record_suffix`, `record_unique`, `record_append`,
 * `record_lock`, `record_max_size`, `record_max_frames`, `record_interval`,
 * `record_notify`, `record_format` (ours: flv or mp4), and `recorder NAME { ... }`
 * blocks, each inheriting the application's record settings and overriding some.
 */

/** What the loader gives this reader for one block: values after inheritance and defaults. */
export interface DirectiveValues {
  flag(name: string): boolean;
  int(name: string): number;
  text(name: string): string | undefined;
  /** the raw words of the effective line, undefined when only the default applies */
  words(name: string): readonly string[] | undefined;
}

export interface ConfigReport {
  error(message: string): void;
  warn(message: string): void;
}

export interface RecorderConfig {
  /** '' for the application's own recorder, else the `recorder` block's name */
  readonly name: string;
  readonly audio: boolean;
  readonly video: boolean;
  /** video keyframes only (with `video`: every video frame anyway) */
  readonly keyframes: boolean;
  /** not started with the publish: only by rtmp_control record/start */
  readonly manual: boolean;
  /** directory of the files; undefined only when the recorder is off */
  readonly path: string | undefined;
  /** file name suffix, strftime patterns allowed (`.flv`) */
  readonly suffix: string;
  readonly unique: boolean;
  readonly append: boolean;
  readonly lock: boolean;
  /** bytes per file before rolling to the next; 0 = no bound */
  readonly maxSize: number;
  /** video frames (audio frames for an audio-only file) per file before rolling; 0 = no bound */
  readonly maxFrames: number;
  /** ms of stream time per file before rolling; 0 = off */
  readonly interval: number;
  /** NetStream.Record.Start / Stop to the publisher */
  readonly notify: boolean;
  /** the file format (record_format, ours): FLV as nginx-rtmp, or fragmented MP4 */
  readonly format: RecordFormat;
}

/** record_format's values */
export const RecordFormat = { Flv: 'flv', Mp4: 'mp4' } as const;
export type RecordFormat = (typeof RecordFormat)[keyof typeof RecordFormat];

/** The default record_suffix of each format (when record_suffix is not given) */
const DEFAULT_SUFFIX: Readonly<Record<RecordFormat, string>> = { flv: '.flv', mp4: '.mp4' };

function readFormat(v: DirectiveValues): RecordFormat {
  const t = v.text('record_format');
  return t === RecordFormat.Mp4 ? RecordFormat.Mp4 : RecordFormat.Flv;
}

export interface RecordConfig {
  /** recorders that are not `off`: the application's own first (when on), then the blocks in order */
  readonly recorders: readonly RecorderConfig[];
}

const MODE_WORDS = ['off', 'all', 'audio', 'video', 'keyframes', 'manual'] as const;
type ModeWord = (typeof MODE_WORDS)[number];

function isModeWord(w: string): w is ModeWord {
  return (MODE_WORDS as readonly string[]).includes(w);
}

function readRecorder(name: string, v: DirectiveValues, report: ConfigReport): RecorderConfig | undefined {
  const where = name === '' ? 'record' : `recorder ${name}: record`;
  const words = (v.words('record') ?? ['off']).map((w) => w.toLowerCase());
  let audio = false;
  let video = false;
  let keyframes = false;
  let manual = false;
  for (const w of words) {
    if (!isModeWord(w)) {
      report.error(`${where}: unknown mode "${w}" (expected ${MODE_WORDS.join(', ')})`);
      return undefined;
    }
    switch (w) {
      case 'off':
        break;
      case 'all':
        audio = video = true;
        break;
      case 'audio':
        audio = true;
        break;
      case 'video':
        video = true;
        break;
      case 'keyframes':
        keyframes = true;
        break;
      case 'manual':
        manual = true;
        break;
      default: {
        const never: never = w;
        throw new Error(`internal: record mode ${String(never)}`);
      }
    }
  }
  if (words.includes('off') && words.length > 1) {
    report.error(`${where}: "off" cannot be combined with other modes`);
    return undefined;
  }
  if (!audio && !video && !keyframes) {
    // `record off`, or `record manual` alone (nothing to record): nginx-rtmp records nothing either
    if (manual) report.warn(`${where}: "manual" without audio, video or keyframes records nothing`);
    return undefined;
  }
  const path = v.text('record_path');
  if (path === undefined) {
    report.error(`${where}: recording is on but record_path is not set`);
    return undefined;
  }
  const lock = v.flag('record_lock');
  const format = readFormat(v);
  let append = v.flag('record_append');
  if (append && format === RecordFormat.Mp4) {
    report.warn(`${where}: record_append is not done for record_format mp4 (an MP4 file has one init): each recording starts a new file`);
    append = false;
  }
  if (lock) report.warn(`${where}: record_lock takes no lock on this server (Node.js has no fcntl locks); the file is written in place as usual`);
  return {
    name,
    audio,
    video,
    keyframes,
    manual,
    path,
    // record_suffix when given, else the format's (the table's default is FLV's)
    suffix: v.words('record_suffix') === undefined ? DEFAULT_SUFFIX[format] : (v.text('record_suffix') ?? DEFAULT_SUFFIX[format]),
    unique: v.flag('record_unique'),
    append,
    lock,
    maxSize: v.int('record_max_size'),
    maxFrames: v.int('record_max_frames'),
    interval: v.int('record_interval'),
    notify: v.flag('record_notify'),
    format,
  };
}

/** Reads an application's recorders; problems go to `report`. */
export function readRecordConfig(app: DirectiveValues, blocks: readonly { readonly name: string; readonly values: DirectiveValues }[], report: ConfigReport): RecordConfig {
  const recorders: RecorderConfig[] = [];
  const own = readRecorder('', app, report);
  if (own !== undefined) recorders.push(own);
  const seen = new Set<string>();
  for (const b of blocks) {
    if (seen.has(b.name)) {
      report.error(`duplicate recorder "${b.name}"`);
      continue;
    }
    seen.add(b.name);
    const r = readRecorder(b.name, b.values, report);
    if (r !== undefined) recorders.push(r);
  }
  return { recorders };
}

export const NO_RECORDING: RecordConfig = { recorders: [] };
