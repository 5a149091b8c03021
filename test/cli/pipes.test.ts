import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { VMPM_BIN } from '../helpers/cli';
import { forgeSections } from '../../bench/lib/forge';

/**
 * Issue 13 item 5: a reader that stops reading is normal. Every command, commander's own help output
 * included, ends quietly (no stack trace, no "unexpected error") when stdout's reader goes away.
 */
const SAMPLE = join(__dirname, '..', '..', '..', 'samples', 'boot-sector-panic.vmpm');
const dir = mkdtempSync(join(tmpdir(), 'vmpm-pipes-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** Runs `vmpm ARGS | READER` in bash; returns vmpm's exit code and stderr. */
function piped(args: string[], reader: string): Promise<{ code: number; stderr: string }> {
  const quoted = [process.execPath, VMPM_BIN, ...args].map((a) => `'${a.replace(/'/g, "'\\''")}'`).join(' ');
  return new Promise((resolve, reject) => {
    const sh = spawn('bash', ['-c', `${quoted} 2>"$ERRFILE" | ${reader} >/dev/null; echo "\${PIPESTATUS[0]}"`], {
      env: { ...process.env, NO_COLOR: '1', ERRFILE: join(dir, 'err.txt') },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    sh.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    sh.on('error', reject);
    sh.on('close', () => resolve({ code: Number(out.trim()), stderr: readFileSync(join(dir, 'err.txt'), 'utf8') }));
  });
}

test('a closed stdout ends every kind of output quietly with 141 (128 + SIGPIPE), as cat does', async () => {
  // A 4 MiB JSON section, well past a pipe's buffer.
  const big = join(dir, 'big.vmpm');
  writeFileSync(big, forgeSections(readFileSync(SAMPLE), { 'qmp-transcript': JSON.stringify({ endpoint: 'x', entries: Array.from({ length: 40_000 }, (_, i) => ({ at: 't', dir: 'rx', line: `line ${i} ${'x'.repeat(60)}` })) }) }));
  const cases: Array<[string[], string]> = [
    [['search', SAMPLE, '--regex', '[A-Z]{6}', '--limit', '5000'], 'head -1'],
    [['read', SAMPLE, '--phys', '0x100000', '--length', '0x800000', '--raw'], 'head -c 10'],
    [['read', SAMPLE, '--phys', '0x0', '--length', '0x1000000'], 'head -c 10'],
    [['section', big, 'qmp-transcript'], 'head -c 300'],
    [['verify', '--help'], 'true'],
    [['--help'], 'true'],
    [['--version'], 'true'],
    [['events', SAMPLE, '--json'], 'true'],
  ];
  for (const [args, reader] of cases) {
    const r = await piped(args, reader);
    assert.equal(r.stderr, '', `${args.join(' ')} | ${reader}: stderr ${r.stderr}`);
    assert.ok(r.code === 141 || r.code === 0, `${args.join(' ')} | ${reader}: exit ${r.code}`);
  }
  const r = await piped(['read', SAMPLE, '--phys', '0x100000', '--length', '0x800000', '--raw'], 'head -c 10');
  assert.equal(r.code, 141, 'a read cut short reports SIGPIPE like cat');
});
