import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, resolve, dirname, sep } from 'node:path';

/**
 * vmpm's data flows one way: QMP -> capture -> bundle -> analysis -> CLI. This test reads every source
 * file's imports and fails when a module reaches into a layer it may not use, so the architecture the
 * README describes stays true as the code grows.
 */
const SRC = resolve(__dirname, '..', '..', '..', 'src');

/** Which top-level directories under src/ each layer may import from (besides itself). */
const ALLOWED: Record<string, string[]> = {
  util: [],
  arch: ['util', 'bundle/schema'],
  qmp: ['util'],
  libvirt: ['util', 'qmp'],
  guest: ['util', 'qmp'],
  bundle: ['util', 'arch'],
  guestos: ['util', 'arch', 'formats', 'bundle'],
  capture: ['util', 'arch', 'qmp', 'bundle', 'version'],
  analysis: ['util', 'arch', 'bundle', 'version'],
  watch: ['util', 'qmp', 'libvirt', 'capture', 'bundle', 'version'],
  cli: ['util', 'arch', 'qmp', 'libvirt', 'guest', 'bundle', 'capture', 'analysis', 'watch', 'version'],
};

function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...sourceFiles(p));
    else if (p.endsWith('.ts')) out.push(p);
  }
  return out;
}

function layerOf(file: string): string {
  const rel = relative(SRC, file).split(sep);
  return rel.length === 1 ? rel[0]!.replace(/\.ts$/, '') : rel[0]!;
}

const IMPORT_RE = /(?:import|export)\s[^'"]*?from\s+['"]([^'"]+)['"]|require\(\s*['"]([^'"]+)['"]\s*\)|import\(\s*['"]([^'"]+)['"]\s*\)/g;

test('no module imports from a layer above it', () => {
  const violations: string[] = [];
  for (const file of sourceFiles(SRC)) {
    const layer = layerOf(file);
    const allowed = ALLOWED[layer];
    if (allowed === undefined) continue; // top-level files (index.ts, version.ts) are the package surface
    const text = readFileSync(file, 'utf8');
    for (const m of text.matchAll(IMPORT_RE)) {
      const spec = m[1] ?? m[2] ?? m[3]!;
      if (!spec.startsWith('.')) continue;
      const target = relative(SRC, resolve(dirname(file), spec)).split(sep).join('/');
      const targetLayer = target.split('/')[0]!;
      if (targetLayer === layer) continue;
      const ok = allowed.some((a) => target === a || target.startsWith(`${a}/`) || targetLayer === a);
      if (!ok) violations.push(`${relative(SRC, file)} imports ${target} (layer ${targetLayer} is not below ${layer})`);
    }
  }
  assert.deepEqual(violations, []);
});

test('the layer table covers every directory under src/', () => {
  const dirs = readdirSync(SRC).filter((n) => statSync(join(SRC, n)).isDirectory());
  assert.deepEqual(dirs.filter((d) => !(d in ALLOWED)), []);
});
