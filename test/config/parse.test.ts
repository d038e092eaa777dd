import assert from 'node:assert/strict';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { ErrorCode, ServerError, isServerError } from '../../src/core/errors.js';
import { loadConfigFile, parseConfigText } from '../../src/config/load.js';
import {
  type ConfigNode,
  type ParseOptions,
  expandGlob,
  globSegmentRegExp,
  parseConfigTree,
  parseSource,
  tokenize,
  unescapeWord,
} from '../../src/config/parse.js';

const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), 'fixtures');

function words(text: string): string[] {
  return tokenize(text, 't.conf').flatMap((t) => (t.kind === 'word' ? [t.value] : []));
}

function child(nodes: readonly ConfigNode[] | undefined, name: string): ConfigNode {
  const n = nodes?.find((x) => x.name === name);
  assert.ok(n, `no node ${name}`);
  return n;
}

/** asserts `fn` throws a ServerError with `code` whose message matches `re` */
function throwsConfig(fn: () => unknown, code: ErrorCode, re: RegExp): ServerError {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  assert.ok(isServerError(caught), `expected a ServerError, got ${String(caught)}`);
  assert.equal(caught.code, code, caught.message);
  assert.match(caught.message, re);
  return caught;
}

/** an in-memory file system for include tests */
function memfs(files: Record<string, string>, globs: Record<string, string[]> = {}): ParseOptions & { reads: string[]; patterns: string[] } {
  const reads: string[] = [];
  const patterns: string[] = [];
  return {
    reads,
    patterns,
    readFile: (p: string) => {
      reads.push(p);
      const text = files[p];
      if (text === undefined) throw Object.assign(new Error(`ENOENT: ${p}`), { code: 'ENOENT' });
      return text;
    },
    glob: (p: string) => {
      patterns.push(p);
      return globs[p] ?? [];
    },
  };
}

describe('tokenizer', () => {
  it('splits words and punctuation, skipping comments', () => {
    const toks = tokenize('# head comment\nlisten 1935; # tail\nrtmp { }', 't.conf');
    assert.deepEqual(
      toks.map((t) => (t.kind === 'word' ? t.value : t.kind)),
      ['listen', '1935', ';', 'rtmp', '{', '}'],
    );
  });

  it('treats # inside a word as an ordinary character', () => {
    assert.deepEqual(words('a#b c#;'), ['a#b', 'c#']);
  });

  it('reads single and double quoted words with spaces, ; { } and newlines', () => {
    assert.deepEqual(words(`exec "a b" 'c d' "x;y{z}" "two\nlines";`), ['exec', 'a b', 'c d', 'x;y{z}', 'two\nlines']);
    const toks = tokenize('a "q";', 't.conf');
    assert.equal(toks[1]?.kind === 'word' && toks[1].quoted, true);
  });

  it('resolves backslash escapes as nginx does', () => {
    assert.deepEqual(words(String.raw`a "q\"x" 'it\'s' "t\tn\nb\\s" "\d" b\;c;`), ['a', 'q"x', "it's", 't\tn\nb\\s', '\\d', 'b\\;c']);
    assert.equal(unescapeWord(String.raw`\"\'\\\t\r\n\x`), `"'\\\t\r\n\\x`);
  });

  it('keeps $variables and ${variables} in unquoted words', () => {
    assert.deepEqual(words('push rtmp://h/app/${name}_x $args;'), ['push', 'rtmp://h/app/${name}_x', '$args']);
  });

  it('records line and column of every token (tabs count as one column, CRLF ends lines)', () => {
    const toks = tokenize('a b;\r\n\tc "d\ne" f;', 't.conf');
    const loc = (i: number): string => `${toks[i]?.loc.line}:${toks[i]?.loc.col}`;
    assert.deepEqual([loc(0), loc(1), loc(2), loc(3), loc(4), loc(5), loc(6)], ['1:1', '1:3', '1:4', '2:2', '2:4', '3:4', '3:5']);
  });
});

describe('block parser', () => {
  it('builds the tree with file, line and column of each directive and argument', () => {
    const nodes = parseSource('rtmp {\n  server {\n\tlisten 127.0.0.1:1935;\n  }\n}\n', 'f.conf');
    const rtmp = child(nodes, 'rtmp');
    assert.deepEqual(rtmp.loc, { file: 'f.conf', line: 1, col: 1 });
    const server = child(rtmp.children, 'server');
    assert.deepEqual([server.loc.line, server.loc.col], [2, 3]);
    const listen = child(server.children, 'listen');
    assert.deepEqual(listen.args, ['127.0.0.1:1935']);
    assert.equal(listen.children, undefined);
    assert.deepEqual([listen.loc.line, listen.loc.col, listen.argLocs[0]?.col], [3, 2, 9]);
    assert.deepEqual(server.children?.length, 1);
  });

  it('keeps empty blocks and block arguments', () => {
    const nodes = parseSource('application live {}\nlocation = /x { }', 'f.conf');
    assert.deepEqual(nodes.map((n) => [n.name, n.args, n.children?.length]), [
      ['application', ['live'], 0],
      ['location', ['=', '/x'], 0],
    ]);
  });

  it('refuses an unterminated double or single quote, pointing at the opening quote', () => {
    throwsConfig(() => parseSource('a "abc;\nb c;\n', 'f.conf'), ErrorCode.ConfigSyntax, /^f\.conf:1:3: unterminated quoted string/);
    throwsConfig(() => parseSource("rtmp {\n  x 'abc;\n}", 'f.conf'), ErrorCode.ConfigSyntax, /^f\.conf:2:5: unterminated quoted string/);
  });

  it('refuses an unterminated block, naming the block and where it opened', () => {
    throwsConfig(() => parseSource('rtmp {\n server {\n }\n', 'f.conf'), ErrorCode.ConfigSyntax, /^f\.conf:4:1: unexpected end of file, expecting "}" to close block "rtmp" opened at 1:1$/);
  });

  it('refuses a stray }, a lone ; or {, and a missing ;', () => {
    throwsConfig(() => parseSource('a b;\n}', 'f.conf'), ErrorCode.ConfigSyntax, /^f\.conf:2:1: unexpected "}"$/);
    throwsConfig(() => parseSource('a b;;', 'f.conf'), ErrorCode.ConfigSyntax, /^f\.conf:1:5: unexpected ";"$/);
    throwsConfig(() => parseSource('{ a; }', 'f.conf'), ErrorCode.ConfigSyntax, /^f\.conf:1:1: unexpected "\{"$/);
    throwsConfig(() => parseSource('listen 1935', 'f.conf'), ErrorCode.ConfigSyntax, /^f\.conf:1:12: unexpected end of file, expecting ";" or "}"/);
    throwsConfig(() => parseSource('rtmp { live on }', 'f.conf'), ErrorCode.ConfigSyntax, /^f\.conf:1:16: unexpected "}": directive "live" is not terminated by ";"/);
  });

  it('refuses a character glued to a closing quote', () => {
    throwsConfig(() => parseSource('a "b"c;', 'f.conf'), ErrorCode.ConfigSyntax, /^f\.conf:1:6: unexpected "c" after a quoted string/);
  });

  it('accepts a ")" right after a quoted string, as a word of its own (nginx\'s if condition)', () => {
    const nodes = parseSource("location / {\n  if ($request_method = 'OPTIONS') { return 204; }\n  if ($request_method != \"GET\"){ return 405; }\n}", 'f.conf');
    const loc = child(nodes, 'location');
    const ifs = (loc.children ?? []).filter((n) => n.name === 'if');
    assert.deepEqual(
      ifs.map((n) => n.args),
      [
        ['($request_method', '=', 'OPTIONS', ')'],
        ['($request_method', '!=', 'GET', ')'],
      ],
    );
    assert.deepEqual(ifs[0]?.argLocs.map((l) => l.col), [6, 23, 25, 34]);
    assert.deepEqual(ifs[1]?.children?.map((n) => [n.name, ...n.args]), [['return', '405']]);
  });

  it('still refuses other characters after a quoted string, and an unterminated quote before ")"', () => {
    throwsConfig(() => parseSource("if ($a = 'b'(c) { }", 'f.conf'), ErrorCode.ConfigSyntax, /^f\.conf:1:13: unexpected "\(" after a quoted string/);
    throwsConfig(() => parseSource("if ($a = 'b)) { }", 'f.conf'), ErrorCode.ConfigSyntax, /unterminated quoted string/);
    throwsConfig(() => parseSource("if ($a = 'b')", 'f.conf'), ErrorCode.ConfigSyntax, /unexpected end of file/);
    assert.deepEqual(child(parseSource("a 'b')x;", 'f.conf'), 'a').args, ['b', ')x']);
  });

  it('refuses absurdly deep nesting with a ServerError', () => {
    throwsConfig(() => parseSource('a {'.repeat(200) + '}'.repeat(200), 'f.conf'), ErrorCode.ConfigSyntax, /nested deeper/);
  });
});

describe('include', () => {
  it('expands a glob relative to the including file, in sorted order', () => {
    const fs = memfs(
      { '/v/conf.d/a.conf': 'application a {}', '/v/conf.d/b.conf': 'application b {}' },
      { '/v/conf.d/*.conf': ['/v/conf.d/b.conf', '/v/conf.d/a.conf'] },
    );
    const parsed = parseConfigTree('server { include conf.d/*.conf; listen 1; }', '/v/main.conf', fs);
    assert.deepEqual(parsed.errors, []);
    assert.deepEqual(fs.patterns, ['/v/conf.d/*.conf']);
    const server = child(parsed.nodes, 'server');
    assert.deepEqual(
      server.children?.map((n) => [n.name, n.args[0], n.loc.file]),
      [
        ['application', 'a', '/v/conf.d/a.conf'],
        ['application', 'b', '/v/conf.d/b.conf'],
        ['listen', '1', '/v/main.conf'],
      ],
    );
  });

  it('accepts a glob that matches nothing', () => {
    const parsed = parseConfigTree('include none/*.conf;\na b;', '/v/main.conf', memfs({}));
    assert.deepEqual(parsed.errors, []);
    assert.deepEqual(parsed.nodes.map((n) => n.name), ['a']);
  });

  it('resolves includes inside an included file relative to that file', () => {
    const fs = memfs({ '/v/conf.d/x.conf': 'include y.conf;', '/v/conf.d/y.conf': 'deep on;' });
    const parsed = parseConfigTree('include conf.d/x.conf;', '/v/main.conf', fs);
    assert.deepEqual(parsed.errors, []);
    assert.deepEqual(fs.reads, ['/v/conf.d/x.conf', '/v/conf.d/y.conf']);
    assert.deepEqual(parsed.nodes[0]?.loc, { file: '/v/conf.d/y.conf', line: 1, col: 1 });
  });

  it('reports a missing plain file at the include directive', () => {
    const parsed = parseConfigTree('a b;\n  include missing.conf;', '/v/main.conf', memfs({}));
    assert.equal(parsed.errors.length, 1);
    assert.equal(parsed.errors[0]?.code, ErrorCode.ConfigInclude);
    assert.match(parsed.errors[0]?.message ?? '', /^\/v\/main\.conf:2:3: cannot read included file "\/v\/missing\.conf" \(ENOENT\)$/);
  });

  it('detects include cycles (including a file including itself)', () => {
    const fs = memfs({ '/v/a.conf': 'include b.conf;', '/v/b.conf': 'x y;\ninclude a.conf;' });
    const parsed = parseConfigTree('include a.conf;', '/v/main.conf', fs);
    assert.equal(parsed.errors.length, 1);
    assert.match(parsed.errors[0]?.message ?? '', /^\/v\/b\.conf:2:1: include cycle: \/v\/a\.conf -> \/v\/b\.conf -> \/v\/a\.conf$/);
    const self = parseConfigTree('include main.conf;', '/v/main.conf', memfs({ '/v/main.conf': 'include main.conf;' }));
    assert.match(self.errors[0]?.message ?? '', /include cycle: \/v\/main\.conf -> \/v\/main\.conf/);
  });

  it('reports a syntax error inside an included file with that file name', () => {
    const parsed = parseConfigTree('include bad.conf;\nok on;', '/v/main.conf', memfs({ '/v/bad.conf': 'x {' }));
    assert.equal(parsed.errors[0]?.code, ErrorCode.ConfigSyntax);
    assert.match(parsed.errors[0]?.message ?? '', /^\/v\/bad\.conf:1:4: /);
    assert.deepEqual(parsed.nodes.map((n) => n.name), ['ok']);
  });

  it('refuses include with the wrong number of arguments', () => {
    const parsed = parseConfigTree('include a.conf b.conf;', '/v/main.conf', memfs({}));
    assert.match(parsed.errors[0]?.message ?? '', /^\/v\/main\.conf:1:1: invalid number of arguments in "include" directive/);
  });

  it('expands globs on the real file system', () => {
    assert.deepEqual(
      expandGlob(join(FIXTURES, 'inc-app-*.conf')).map((f) => f.slice(FIXTURES.length + 1)),
      ['inc-app-a.conf', 'inc-app-b.conf'],
    );
    assert.deepEqual(
      expandGlob(join(FIXTURES, 'cycle-[!b].conf')).map((f) => f.slice(FIXTURES.length + 1)),
      ['cycle-a.conf'],
    );
    assert.deepEqual(expandGlob(join(FIXTURES, 'nothing-*.conf')), []);
    assert.deepEqual(expandGlob(join(FIXTURES, 'no-dir-*', '*.conf')), []);
    assert.ok(globSegmentRegExp('*.conf').test('a.conf'));
    assert.ok(!globSegmentRegExp('*.conf').test('a.confx'));
    assert.ok(globSegmentRegExp('x?[0-9].c[ao]nf').test('xa7.conf'));
    assert.ok(globSegmentRegExp('a[b').test('a[b'));
  });

  it('loads fixtures with a glob include and a relative include', () => {
    const cfg = loadConfigFile(join(FIXTURES, 'inc-main.conf'));
    const [srv] = cfg.rtmp;
    assert.ok(srv);
    assert.equal(srv.chunkSize, 8192);
    assert.deepEqual(
      srv.applications.map((a) => [a.name, a.live.live]),
      [
        ['a', true],
        ['b', false],
      ],
    );
  });

  it('refuses the include cycle and the missing file of the fixtures', () => {
    throwsConfig(() => loadConfigFile(join(FIXTURES, 'cycle-a.conf')), ErrorCode.ConfigInclude, /cycle-b\.conf:1:1: include cycle: .*cycle-a\.conf -> .*cycle-b\.conf -> .*cycle-a\.conf$/);
    throwsConfig(() => loadConfigFile(join(FIXTURES, 'inc-missing.conf')), ErrorCode.ConfigInclude, /inc-missing\.conf:4:9: cannot read included file ".*no-such-file\.conf"/);
    throwsConfig(() => loadConfigFile(join(FIXTURES, 'no-such-main.conf')), ErrorCode.ConfigInclude, /no-such-main\.conf: cannot read the configuration file \(ENOENT\)/);
  });
});

describe('fuzz: random text only ever yields ServerErrors', () => {
  const noFiles: ParseOptions = {
    readFile: (p: string) => {
      throw Object.assign(new Error(`no ${p}`), { code: 'ENOENT' });
    },
    glob: () => ['/nope/a.conf'],
  };

  function check(text: string): void {
    try {
      parseConfigText(text, 'fuzz.conf', noFiles);
    } catch (e) {
      if (!(e instanceof ServerError)) throw e;
      for (const line of e.message.split('\n')) assert.match(line, /^fuzz\.conf:\d+:\d+: \S/);
    }
  }

  it('arbitrary strings', () => {
    fc.assert(fc.property(fc.string({ maxLength: 400 }), check), { numRuns: 500 });
    fc.assert(fc.property(fc.string({ unit: 'binary', maxLength: 200 }), check), { numRuns: 300 });
  });

  it('configuration-like token soup', () => {
    const piece = fc.constantFrom(
      'rtmp', 'server', 'application', 'http', 'location', 'events', 'types', 'live', 'on', 'off', 'listen', '1935', '[::1]:19',
      '{', '}', ';', ' ', '\n', '"', "'", '\\', '#', '$', '${x}', 'include', '*.conf', 'x.conf', 'hls', 'allow', 'deny', 'publish',
      'play', 'all', '10.0.0.0/8', 'push', 'pull', 'rtmp://a/b', 'static', 'name=x', 'exec', 'ffmpeg', 'chunk_size', '4k', 'timeout',
      '5x', '1h30m', 'meta', 'copy', 'error_log', 'stderr', 'root', '/tmp', 'add_header', 'rtmp_stat', '=', '~', 'worker_processes',
    );
    fc.assert(fc.property(fc.array(piece, { maxLength: 60 }).map((p) => p.join(' ')), check), { numRuns: 1000 });
    fc.assert(fc.property(fc.array(piece, { maxLength: 60 }).map((p) => p.join('')), check), { numRuns: 500 });
  });
});
