import type { Command } from 'commander';
import { withBundle, readMemory, openKernelView, planVirtualBundleRead, readVirtualRuns } from '../../analysis';
import { UsageError, VmpmError } from '../../util/errors';
import { toHex } from '../../util/hex';
import { parseAddress, parseCount, parseSmallInt } from '../output/args';
import { hexdump } from '../output/hexdump';
import { formatJson } from '../output/json';
import { checkOutputPath, closeOutput, discardOutput, openOutput, writeChunk } from '../output/write';
import { abortOnSignals, exitCodeForSignal } from '../signals';

interface ReadOptions {
  phys?: string;
  virt?: string;
  cpu?: string;
  length: string;
  raw?: boolean;
  json?: boolean;
  output?: string;
  force?: boolean;
  zeroFill?: boolean;
}

/** JSON output holds the bytes as hex in memory: keep it to a size a JSON consumer can take. */
const JSON_MAX = 16n << 20n;

/** `vmpm read FILE --phys ADDR`: xxd-style hexdump or raw bytes of guest-physical memory. */
export function register(program: Command): void {
  program
    .command('read')
    .description('hexdump (or write raw) guest-physical or guest-virtual memory from a bundle')
    .argument('<file>', 'bundle (.vmpm)')
    .option('--phys <addr>', 'guest-physical start address, e.g. 0x7c00')
    .option('--virt <addr>', "guest-virtual start address, translated through a vCPU's page tables")
    .option('--cpu <n>', 'with --virt: use this vCPU\'s page tables (default: the first vCPU)')
    .option('--length <n>', 'bytes to read (K/M/G suffixes allowed)', '256')
    .option('--raw', 'write raw bytes instead of a hexdump (needs -o or a pipe)')
    .option('--json', 'print {"address","length","hex"} as JSON (at most 16 MiB)')
    .option('-o, --output <file>', 'write to this file instead of stdout')
    .option('--force', 'overwrite the -o file if it exists')
    .option('--zero-fill', 'read uncaptured addresses as zeros instead of failing')
    .addHelpText('after', '\nExamples:\n  vmpm read crash.vmpm --phys 0x7c00 --length 64\n  vmpm read crash.vmpm --phys 0 --length 64M --raw -o low.bin\n  vmpm read crash.vmpm --virt 0xffffffff81000000 --length 64')
    .action(async (file: string, o: ReadOptions) => {
      if ((o.phys === undefined) === (o.virt === undefined)) throw new UsageError('give exactly one of --phys ADDR or --virt ADDR');
      if (o.virt !== undefined && o.zeroFill) throw new UsageError('--zero-fill applies to --phys only: --virt names the page that is not mapped or not captured instead');
      if (o.phys !== undefined && o.cpu !== undefined) throw new UsageError('--cpu applies to --virt only');
      const addr = o.phys !== undefined ? parseAddress(o.phys, '--phys') : parseAddress(o.virt!, '--virt');
      const cpu = o.cpu === undefined ? undefined : parseSmallInt(o.cpu, '--cpu');
      const length = parseCount(o.length, '--length');
      if (o.raw && o.json) throw new UsageError('--raw and --json cannot be combined');
      if (o.json && length > JSON_MAX) throw new UsageError(`--json reads at most 16 MiB; use --raw -o FILE for ${length} bytes`);
      if (o.raw && !o.output && process.stdout.isTTY) throw new UsageError('refusing to write raw binary to a terminal; use -o FILE or pipe the output');
      if (o.output) checkOutputPath(o.output, o.force === true);
      await withBundle(file, async (bundle) => {
        // Checks for holes (or unmapped pages) before creating -o, so a failed read leaves no file behind.
        const chunks =
          o.virt !== undefined
            ? await (async () => {
                const view = await openKernelView(bundle);
                return readVirtualRuns(view, await planVirtualBundleRead(view, addr, length, cpu));
              })()
            : readMemory(bundle, addr, length, { zeroFill: o.zeroFill === true });
        const first = await chunks.next();
        if (!o.output) {
          await writeChunks(process.stdout, first, chunks, addr, o);
          return;
        }
        const out = await openOutput(o.output, o.force === true);
        // Ctrl-C or SIGTERM mid-write (a --zero-fill read can be gigabytes) must not leave a partial -o file.
        const signals = abortOnSignals();
        try {
          await writeChunks(out, first, chunks, addr, o, signals.signal);
          await closeOutput(out);
        } catch (err) {
          await discardOutput(out, o.output);
          throw err;
        } finally {
          signals.dispose();
        }
      });
    });
}

/** Hexdump, raw or JSON of every chunk to `out`; stops with an error when `signal` is aborted. */
async function writeChunks(
  out: NodeJS.WritableStream,
  first: IteratorResult<Buffer>,
  chunks: AsyncGenerator<Buffer>,
  addr: bigint,
  o: ReadOptions,
  signal?: AbortSignal,
): Promise<void> {
  let at = addr;
  const jsonParts: string[] = [];
  for (let r = first; !r.done; r = await chunks.next()) {
    if (signal?.aborted) {
      const name = String(signal.reason);
      throw new VmpmError(`read interrupted by ${name}; the partial -o ${o.output} was removed`, { exitCode: exitCodeForSignal(name) });
    }
    const chunk = r.value;
    if (o.json) jsonParts.push(chunk.toString('hex'));
    else await writeChunk(out, o.raw ? chunk : hexdump(chunk, at));
    at += BigInt(chunk.length);
  }
  if (o.json) await writeChunk(out, formatJson({ address: toHex(addr), length: Number(at - addr), hex: jsonParts.join('') }));
}
