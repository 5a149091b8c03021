import type { Command } from 'commander';
import { withBundle, openKernelView, buildTranslate, type TranslateModel } from '../../analysis';
import { printJson } from '../output/json';
import { parseAddress, parseSmallInt } from '../output/args';

/** `vmpm translate FILE ADDR [--cpu N]`: walk the guest page tables for one virtual address. */
export function register(program: Command): void {
  program
    .command('translate')
    .description("translate a guest-virtual address through a vCPU's page tables (x86_64 CR3, aarch64 TTBR1)")
    .argument('<file>', 'bundle (.vmpm)')
    .argument('<addr>', 'guest-virtual address, e.g. 0xffffffff81000000')
    .option('--cpu <n>', "use this vCPU's page tables (default: the first vCPU)")
    .option('--json', 'print the walk as JSON')
    .addHelpText('after', '\nExamples:\n  vmpm translate crash.vmpm 0xffffffffb3a5c3d6\n  vmpm translate crash.vmpm 0x400000 --cpu 1 --json')
    .action(async (file: string, addrText: string, options: { cpu?: string; json?: boolean }) => {
      const addr = parseAddress(addrText, 'ADDR');
      const cpu = options.cpu === undefined ? undefined : parseSmallInt(options.cpu, '--cpu');
      const model = await withBundle(file, async (b) => buildTranslate(await openKernelView(b), addr, cpu));
      if (options.json) printJson(model);
      else process.stdout.write(formatTranslate(model));
    });
}

export function formatTranslate(m: TranslateModel): string {
  const lines = [`${m.address} via ${m.via}: ${m.mode}, root ${m.root.phys} (${m.root.source})`];
  const width = Math.max(...m.levels.map((l) => l.level.length), 5);
  for (const l of m.levels) {
    const what = !l.present ? 'not present' : l.leaf ? 'maps the page' : 'next table';
    lines.push(`  ${l.level.padEnd(width)} [${String(l.index).padStart(3)}] entry ${l.entryAddress}: ${l.entry.padEnd(18)} ${what.padEnd(13)} ${l.flags.join(' ')}`);
  }
  if (m.mapped) {
    const p = m.permissions!;
    const rights = [p.writable ? 'writable' : 'read-only', p.user ? 'user' : 'kernel-only', p.noExecute ? 'no-execute' : 'executable'];
    lines.push(`physical ${m.physical} (${pageSizeText(m.pageSize!)} page, ${rights.join(', ')}${m.captured ? '' : '; NOT captured in this bundle'})`);
  } else {
    lines.push(`not mapped: the ${m.notPresent!.level} entry at ${m.notPresent!.entryAddress} is not present`);
  }
  return `${lines.join('\n')}\n`;
}

function pageSizeText(hex: string): string {
  const n = BigInt(hex);
  return n >= 1n << 30n ? `${n >> 30n} GiB` : n >= 1n << 20n ? `${n >> 20n} MiB` : `${n >> 10n} KiB`;
}
