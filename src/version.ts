import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/** vmpm's version, read once from package.json (dist/src/version.js -> ../../package.json). */
export const VMPM_VERSION: string = (() => {
  try {
    const pkg = JSON.parse(readFileSync(join(__dirname, '..', '..', 'package.json'), 'utf8')) as { version?: unknown };
    return typeof pkg.version === 'string' ? pkg.version : '0.0.0';
  } catch {
    return '0.0.0';
  }
})();
