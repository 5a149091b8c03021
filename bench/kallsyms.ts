/**
 * Kernel symbol decode time on a real Linux bundle: `node dist/bench/kallsyms.js [BUNDLE]`. Without
 * BUNDLE it boots the Debian test guest (test/linux/scenario.ts, KASLR bzImage), panics and
 * captures it first. Prints the first decode (which also decompresses the bundle frames holding the
 * tables) and the warm decode (tables already decompressed: the decoder's own cost), median of 10.
 */
import { rmSync } from 'node:fs';
import { openBundle, openKernelView } from '../src/analysis';
import { decodeKallsyms } from '../src/guestos/linux/kallsyms';
import { runScenario } from '../test/linux/scenario';

async function main(): Promise<void> {
  let path = process.argv[2];
  let cleanup = (): void => undefined;
  if (path === undefined) {
    const c = await runScenario({ trigger: 'sysrq', kernel: 'bzImage' });
    path = c.bundle;
    cleanup = () => rmSync(c.dir, { recursive: true, force: true });
  }
  try {
    const bundle = await openBundle(path);
    const view = await openKernelView(bundle);
    const times: number[] = [];
    let count = 0;
    for (let i = 0; i < 11; i++) {
      const t = performance.now();
      const { kallsyms } = await decodeKallsyms(view.vmcoreinfo!, (v, n) => view.readKernel(v, n));
      times.push(performance.now() - t);
      count = kallsyms.count;
    }
    await bundle.close();
    const warm = times.slice(1).sort((a, b) => a - b);
    process.stdout.write(`| kallsyms decode, ${count} symbols | first ${times[0]!.toFixed(0)} ms | warm median ${warm[5]!.toFixed(0)} ms (min ${warm[0]!.toFixed(0)}) |\n`);
  } finally {
    cleanup();
  }
}

main().catch((err: Error) => {
  process.stderr.write(`bench/kallsyms: ${err.message}\n`);
  process.exit(1);
});
