import { test } from 'node:test';
import assert from 'node:assert/strict';
import { measure, MAX_FILE_LINES, MAX_FUNCTION_LINES } from './code-size';

/**
 * Issue 9's "Done when": no source file over ~500 lines and no function over ~80 lines. The exceptions
 * below are code other helpers are rewriting right now (issue 9's capture phases, trailer descriptors);
 * each entry goes when its owner splits it, and an entry that no longer matches anything fails the test
 * so the list cannot outlive its reason.
 */
const PENDING_ELSEWHERE = new Set<string>([]);

test(`no src file over ${MAX_FILE_LINES} lines and no function over ${MAX_FUNCTION_LINES} lines (TypeScript parser)`, () => {
  const { files, functions } = measure();
  const found = [
    ...files.map((f) => ({ key: `file src/${f.file}`, text: `src/${f.file}: ${f.lines} lines` })),
    ...functions.map((f) => ({ key: `function src/${f.file} ${f.name}`, text: `src/${f.file}:${f.line} ${f.name}: ${f.lines} lines` })),
  ];
  const over = found.filter((f) => !PENDING_ELSEWHERE.has(f.key)).map((f) => f.text);
  assert.deepEqual(over, [], `split these:\n${over.join('\n')}`);
  const stale = [...PENDING_ELSEWHERE].filter((key) => !found.some((f) => f.key === key));
  assert.deepEqual(stale, [], `these exceptions are within the limits now; remove them from PENDING_ELSEWHERE:\n${stale.join('\n')}`);
});

test('the measure sees arrow functions, methods and nested functions, and ignores leading comments', async () => {
  const { mkdtempSync, writeFileSync, rmSync } = await import('node:fs');
  const { join } = await import('node:path');
  const { tmpdir } = await import('node:os');
  const dir = mkdtempSync(join(tmpdir(), 'cleanup-code-size-'));
  try {
    const body = (n: number): string => Array.from({ length: n }, (_, i) => `  const v${i} = ${i};`).join('\n');
    const doc = Array.from({ length: 30 }, () => ' * comment').join('\n');
    writeFileSync(
      join(dir, 'a.ts'),
      [
        `/**\n${doc}\n */`,
        `export function fits(): void {\n${body(78)}\n}`, // 80 lines: within
        `export const arrow = (): void => {\n${body(79)}\n};`, // 81 lines
        `class K {\n  method(): void {\n${body(79)}\n  }\n}`, // 81 lines
        `export function outer(): void {\n  const inner = function (): void {\n${body(80)}\n  };\n  inner();\n}`,
      ].join('\n'),
    );
    const { files, functions } = measure(dir, 100, 80);
    assert.deepEqual(files, [{ file: 'a.ts', lines: 32 + 80 + 81 + 83 + 85 }]);
    assert.deepEqual(
      functions.map((f) => [f.name, f.lines]),
      [
        ['arrow', 81],
        ['K.method', 81],
        ['outer', 85],
        ['inner', 82],
      ],
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
