import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { requireTools } from '../helpers/requirements';
import { BOOT_SECTOR_ANSWERS, BOOT_SECTOR_IMAGE } from '../../src/guest';

const ASM = join(__dirname, '..', '..', '..', 'assets', 'guests', 'boot.asm');

test('the committed boot.bin is exactly what nasm builds from boot.asm', { skip: requireTools('nasm') }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'vmpm-nasm-'));
  try {
    const out = join(dir, 'boot.bin');
    execFileSync('nasm', ['-f', 'bin', '-o', out, ASM]);
    assert.deepEqual(readFileSync(BOOT_SECTOR_IMAGE), readFileSync(out));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('boot.bin is a 512-byte boot sector ending in the 0x55 0xAA signature', () => {
  const bin = readFileSync(BOOT_SECTOR_IMAGE);
  assert.equal(bin.length, 512);
  assert.equal(bin[510], 0x55);
  assert.equal(bin[511], 0xaa);
});

test('boot.bin carries the pattern and marker texts the known answers describe', () => {
  const bin = readFileSync(BOOT_SECTOR_IMAGE);
  for (const p of BOOT_SECTOR_ANSWERS.patterns) assert.ok(bin.includes(p.bytes), `missing ${JSON.stringify(p.bytes.toString('latin1'))}`);
  // The pattern fills exactly 64 KiB.
  const fill = BOOT_SECTOR_ANSWERS.patterns[0]!;
  assert.equal(fill.bytes.length * (fill.repeat ?? 1), 64 * 1024);
});
