import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/** Fixtures live in the source tree (test/fixtures), not in dist: resolve from the compiled file. */
export const FIXTURES = join(__dirname, '..', '..', '..', 'test', 'fixtures');

export function hmpFixture(name: string): string {
  return readFileSync(join(FIXTURES, 'hmp', name), 'utf8');
}

export function mtreeFixture(name: string): string {
  return readFileSync(join(FIXTURES, 'mtree', name), 'utf8');
}
