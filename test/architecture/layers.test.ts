import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, resolve, dirname, sep } from 'node:path';

/**
 * vmpm's layers depend one way (the README's Architecture section draws them). This test reads every
 * source file's imports and fails when a module reaches into a layer it may not use, or when the folders
 * import each other in a cycle (which the table alone could allow), so the picture stays true as the
 * code grows.
 */
const SRC = resolve(__dirname, '..', '..', '..', 'src');
const ROOT = resolve(SRC, '..');

/**
 * Which top-level directories under src/ each layer may import from (besides itself). An entry may
 * name a sub-path ("capture/output") to allow only that part of a layer.
 */
const ALLOWED: Record<string, string[]> = {
  util: [],
  formats: ['util'],
  arch: ['util', 'formats'],
  qmp: ['util'],
  libvirt: ['util', 'qmp'],
  guest: ['util', 'qmp'],
  bundle: ['util', 'arch', 'formats'],
  capture: ['util', 'arch', 'formats', 'qmp', 'bundle', 'version'],
  guestos: ['util', 'arch', 'formats', 'bundle'],
  interop: ['util', 'arch', 'formats', 'bundle', 'guestos', 'capture', 'version'],
  custody: ['util', 'formats', 'bundle', 'guestos', 'version'],
  analysis: ['util', 'arch', 'formats', 'bundle', 'guestos', 'version'],
  watch: ['util', 'qmp', 'libvirt', 'capture', 'bundle', 'guestos', 'analysis', 'version'],
  cli: [
    'util', 'formats', 'arch', 'qmp', 'libvirt', 'guest', 'bundle', 'capture', 'guestos', 'interop', 'custody',
    'analysis', 'watch', 'version',
  ],
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

const IMPORT_RE = /(?:import|export)\s[^'"]*?from\s+['"]([^'"]+)['"]|require\(\s*['"]([^'"]+)['"]\s*\)|import\(\s*['"]([^'"]+)['"]\s*\)|^import\s+['"]([^'"]+)['"]/gm;

/** The relative imports of `file`, as paths from `base` with '/' between folders. */
function relativeImports(file: string, base: string): string[] {
  const specs = [...readFileSync(file, 'utf8').matchAll(IMPORT_RE)].map((m) => m[1] ?? m[2] ?? m[3] ?? m[4]!);
  return specs.filter((spec) => spec.startsWith('.')).map((spec) => relative(base, resolve(dirname(file), spec)).split(sep).join('/'));
}

interface Edge {
  file: string;
  from: string;
  target: string;
  to: string;
}

/** Every relative import that crosses a top-level folder, as (importing file, its layer, target path, target layer). */
function crossLayerImports(): Edge[] {
  const edges: Edge[] = [];
  for (const file of sourceFiles(SRC)) {
    const from = layerOf(file);
    for (const target of relativeImports(file, SRC)) {
      const to = target.split('/')[0]!;
      if (to !== from) edges.push({ file: relative(SRC, file), from, target, to });
    }
  }
  return edges;
}

/** One cycle in a directed graph (as a path that returns to its start), or undefined. */
function findCycle(graph: Map<string, Set<string>>): string[] | undefined {
  const state = new Map<string, 'active' | 'done'>();
  const stack: string[] = [];
  const visit = (node: string): string[] | undefined => {
    if (state.get(node) === 'done') return undefined;
    if (state.get(node) === 'active') return [...stack.slice(stack.indexOf(node)), node];
    state.set(node, 'active');
    stack.push(node);
    for (const next of [...(graph.get(node) ?? [])].sort()) {
      const cycle = visit(next);
      if (cycle) return cycle;
    }
    stack.pop();
    state.set(node, 'done');
    return undefined;
  };
  for (const node of [...graph.keys()].sort()) {
    const cycle = visit(node);
    if (cycle) return cycle;
  }
  return undefined;
}

function graphOf(pairs: Iterable<[string, string]>): Map<string, Set<string>> {
  const graph = new Map<string, Set<string>>();
  for (const [from, to] of pairs) {
    if (!graph.has(from)) graph.set(from, new Set());
    graph.get(from)!.add(to);
  }
  return graph;
}

test('no module imports from a layer above it', () => {
  const violations: string[] = [];
  for (const { file, from, target, to } of crossLayerImports()) {
    const allowed = ALLOWED[from];
    if (allowed === undefined) continue; // top-level files (index.ts, version.ts) are the package surface
    const ok = allowed.some((a) => (a.includes('/') ? target === a || target.startsWith(`${a}/`) : to === a));
    if (!ok) violations.push(`${file} imports ${target} (layer ${to} is not below ${from})`);
  }
  assert.deepEqual(violations, []);
});

test('the layer table itself has no cycle (each layer is strictly below the ones that may import it)', () => {
  const pairs: Array<[string, string]> = [];
  for (const [layer, allowed] of Object.entries(ALLOWED)) for (const a of allowed) pairs.push([layer, a.split('/')[0]!]);
  assert.equal(findCycle(graphOf(pairs))?.join(' -> '), undefined);
});

test('the folders under src/ do not import each other in a cycle', () => {
  const edges = crossLayerImports().filter((e) => e.from !== 'index'); // src/index.ts re-exports everything
  const cycle = findCycle(graphOf(edges.map((e): [string, string] => [e.from, e.to])));
  const witness = cycle?.slice(1).map((to, i) => edges.find((e) => e.from === cycle[i] && e.to === to)!.file);
  assert.deepEqual({ cycle: cycle?.join(' -> '), witness }, { cycle: undefined, witness: undefined });
});

test('the cycle check finds a cycle when there is one', () => {
  assert.deepEqual(findCycle(graphOf([['a', 'b'], ['b', 'c'], ['c', 'a'], ['c', 'd']])), ['a', 'b', 'c', 'a']);
  assert.equal(findCycle(graphOf([['a', 'b'], ['b', 'c'], ['a', 'c']])), undefined);
});

test('the layer table covers every directory under src/', () => {
  const dirs = readdirSync(SRC).filter((n) => statSync(join(SRC, n)).isDirectory());
  assert.deepEqual(dirs.filter((d) => !(d in ALLOWED)), []);
});

/**
 * Who may import whom among the repository's top-level folders: the product (src/) imports neither
 * the tests nor the benches, and the benches do not import the tests (test code may use both).
 */
const FORBIDDEN: Record<string, string[]> = { src: ['test', 'bench'], bench: ['test'] };

/**
 * bench -> test imports that were there before this rule: each still to be moved out of test/ (see
 * the report of the session that added the rule). The list may only shrink: an entry that no longer
 * exists fails the test below, so remove it with the import.
 */
const KNOWN_BENCH_TEST_IMPORTS = [
  'bench/kallsyms.ts imports test/linux/scenario',
];

/** Relative imports from files under `folder` (a top-level folder) into the folders it may not use. */
function forbiddenImports(folder: string): string[] {
  const found: string[] = [];
  for (const file of sourceFiles(join(ROOT, folder))) {
    for (const target of relativeImports(file, ROOT)) {
      if (FORBIDDEN[folder]!.includes(target.split('/')[0]!)) found.push(`${relative(ROOT, file).split(sep).join('/')} imports ${target}`);
    }
  }
  return found.sort();
}

test('src/ imports neither test/ nor bench/, and bench/ does not import test/', () => {
  const found = Object.keys(FORBIDDEN).flatMap(forbiddenImports);
  assert.deepEqual(found.filter((f) => !KNOWN_BENCH_TEST_IMPORTS.includes(f)), [], 'new imports across the rule');
  assert.deepEqual(KNOWN_BENCH_TEST_IMPORTS.filter((k) => !found.includes(k)), [], 'entries of KNOWN_BENCH_TEST_IMPORTS that are gone: remove them');
});
