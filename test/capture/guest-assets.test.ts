import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildAarch64Guest } from '../guest-extra/aarch64-guest';
import { GUEST_ASSETS } from '../guest-extra/guests';
import { requireTools } from '../helpers/requirements';

test('assets/guests/a64.bin is exactly what the documented aarch64 encoder produces', () => {
  assert.ok(readFileSync(join(GUEST_ASSETS, 'a64.bin')).equals(buildAarch64Guest()));
});

for (const name of ['lm', 'blkread', 'fill', 'vmcoreinfo']) {
  test(`assets/guests/${name}.bin is the nasm build of ${name}.asm`, { skip: requireTools('nasm') }, () => {
    const dir = mkdtempSync(join(tmpdir(), 'vmpm-nasm-'));
    try {
      const out = join(dir, `${name}.bin`);
      execFileSync('nasm', ['-f', 'bin', '-o', out, join(GUEST_ASSETS, `${name}.asm`)]);
      assert.ok(readFileSync(out).equals(readFileSync(join(GUEST_ASSETS, `${name}.bin`))));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
}
