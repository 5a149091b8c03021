import type { Command } from 'commander';
import { buildKlog, buildKlogScan, formatKlogLines, parseLevels, withBundle, type KlogModel } from '../../analysis';
import { UsageError } from '../../util/errors';
import { plural } from '../../util/text';
import { parseCount } from '../output/args';
import { printJson } from '../output/json';

interface KlogOptions {
  json?: boolean;
  level?: string;
  tail?: string;
  raw?: boolean;
  scan?: boolean;
}

/** `vmpm klog FILE`: the guest kernel's log rebuilt from the bundle's memory, like dmesg. */
export function register(program: Command): void {
  program
    .command('klog')
    .description("the guest kernel's log (dmesg) rebuilt from the bundle's memory, located from VMCOREINFO")
    .argument('<file>', 'bundle (.vmpm)')
    .option('--json', 'print the records (and where they came from) as JSON')
    .option('--level <levels>', 'only these levels: names or 0-7, comma-separated (err,warn), or warn+ for warn and more severe')
    .option('--tail <n>', 'only the last N records')
    .option('--raw', 'prefix each line with its syslog priority, like dmesg -r: <6>[    1.234567] ...')
    .option('--scan', 'heuristic: without VMCOREINFO, list log-like text found anywhere in RAM (labelled as such)')
    .addHelpText('after', '\nExamples:\n  vmpm klog crash.vmpm\n  vmpm klog crash.vmpm --level warn+ --tail 20\n  vmpm klog crash.vmpm --json')
    .action(async (file: string, o: KlogOptions) => {
      const levels = o.level === undefined ? undefined : parseLevels(o.level);
      const tail = o.tail === undefined ? undefined : Number(parseCount(o.tail, '--tail'));
      if (o.scan) {
        if (levels) throw new UsageError('--scan finds text without levels: --level cannot apply');
        const scan = await withBundle(file, (b) => buildKlogScan(b, tail !== undefined ? { tail } : {}));
        if (o.json) printJson(scan);
        else {
          process.stdout.write(`# ${scan.note}\n`);
          for (const r of scan.records) process.stdout.write(`[${r.phys}] ${r.text.replace(/\n/g, '\n[' + r.phys + '] ')}\n`);
          process.stderr.write(`vmpm klog --scan: ${plural(scan.records.length, 'record')} in ${plural(scan.chains, 'chain')} from ${plural(scan.pagesScanned, 'non-zero page')} (heuristic)\n`);
        }
        return;
      }
      const model = await withBundle(file, (b) => buildKlog(b, { ...(levels ? { levels } : {}), ...(tail !== undefined ? { tail } : {}) }));
      if (o.json) printJson(model);
      else {
        process.stdout.write(formatKlogLines(model.records, { raw: o.raw === true }));
        process.stderr.write(klogFooter(model));
      }
    });
}

/** One line on stderr: where the log came from and what was skipped (stdout stays pure dmesg). */
export function klogFooter(m: KlogModel): string {
  const skipped = m.skippedTotal > 0 ? `; ${plural(m.skippedTotal, 'record')} skipped as unreadable (${Object.entries(m.skipped).map(([k, v]) => `${k} ${v}`).join(', ')})` : '';
  return `vmpm klog: ${plural(m.total, 'record')} from the ${m.layout === 'printk_ringbuffer' ? 'printk ring buffer' : 'log_buf'} of ${m.kernel.release ?? 'the guest kernel'}, located with VMCOREINFO from ${m.kernel.vmcoreinfo}${skipped}\n`;
}
