/**
 * The command line's own contract: `--version`, `-h`/`--help` on every
 * command, exit 2 for a command line that cannot be read, 1 for a command
 * that fails (a bad value included).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { REPO, runCliEach } from '../helpers/cli.ts';

const COMMANDS = ['embed', 'train', 'eval', 'export', 'coordinator', 'worker', 'cluster', 'demo', 'bench'];

test('--version prints the package version; -h and --help print each command’s usage', async (t) => {
  const version = (JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { version: string }).version;
  const [v, ...helps] = await runCliEach([['--version'], ...COMMANDS.map((c, i) => [c, i % 2 ? '-h' : '--help'])], { signal: t.signal });
  assert.equal(v.code, 0);
  assert.equal(v.stdout, `advclip ${version}\n`);
  helps.forEach((h, i) => {
    assert.equal(h.code, 0, `${COMMANDS[i]}: ${h.stderr}`);
    assert.match(h.stdout, new RegExp(`usage: advclip ${COMMANDS[i]}`));
    assert.match(h.stdout, /-h, --help/);
  });
});

test('exit 2 when the command line cannot be read, 1 when the command fails', async (t) => {
  const base = ['--model', 'test/fixtures/tiny-clip-f32', '--data', 'data/shapes-colours', '--out', '/nonexistent/never-written'];
  const cases: [string[], number, RegExp][] = [
    [['no-such-command'], 2, /unknown command \\"no-such-command\\"/],
    [['train', ...base, '--no-such-flag'], 2, /Unknown option '--no-such-flag'/],
    [['train', '--data', 'd', '--out', 'o'], 2, /--model is required/],
    [['bench', 'nothing'], 2, /unknown sub-command \\"nothing\\"/],
    [['train', ...base, '--lora-targets', 'q_proj,gate'], 1, /--lora-targets must be one of q_proj/],
  ];
  const results = await runCliEach(cases.map(([args]) => args), { signal: t.signal });
  results.forEach((r, i) => {
    const [args, code, pattern] = cases[i];
    assert.equal(r.code, code, `${args.join(' ')}: exit ${r.code}\n${r.stderr}`);
    assert.match(r.stderr, pattern, args.join(' '));
    assert.equal(r.stdout, '');
  });
});
