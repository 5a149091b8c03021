/**
 * `vmpm import DUMP -o CASE.vmpm`: turns a dump made without vmpm into a bundle every analyst
 * command reads. Recognised by content, not name: an ELF core (QEMU/libvirt dump-guest-memory, any
 * layout; vmpm's own export), makedumpfile's kdump-compressed file, or the flattened stream
 * (makedumpfile -F, and every kdump-* QEMU 7.2 writes), which is first reassembled into a temporary
 * file beside the output. The dump's SHA-256 is computed from the same reads (formats/file-digest.ts:
 * only bytes the import skips are read again) and kept in the manifest.
 */
import { type FileHandle, open, stat, unlink } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { basename, dirname, join, resolve } from 'node:path';
import { BundleWriter, type CpusSection, type ImportProvenance, type Manifest, type MemmapSection, SECTION } from '../bundle';
import { parseElfNotes, vmcoreinfoFromNotes } from '../formats/elf';
import { FileDigest } from '../formats/file-digest';
import { FileWindow } from '../formats/file-window';
import { isFlattened, reassembleFlattened } from '../formats/kdump/flattened';
import { describeError, VmpmError } from '../util/errors';
import { toHex } from '../util/hex';
import { archOfMachine, cpusFromNotes, machineForKdump } from './cpus-from-notes';
import { importElf } from './import-elf';
import { importKdump } from './import-kdump';
import { importManifest } from './import-manifest';
import { checkTarget, SparseWriter } from './output';

export interface ImportOptions {
  output: string;
  force?: boolean;
  signal?: AbortSignal;
  onProgress?: (done: number, total: number) => void;
}

export interface ImportResult {
  dump: string;
  output: string;
  format: ImportProvenance['format'];
  sha256: string;
  bundleSha256: string;
  arch: string;
  cpus: number;
  ranges: number;
  capturedBytes: string;
  vmcoreinfo: boolean;
  durationMs: number;
  warnings: string[];
}

interface Imported {
  format: ImportProvenance['format'];
  notes: Buffer;
  machine: number | undefined;
  vmcoreinfo?: Buffer;
  ranges: Array<{ start: bigint; length: bigint }>;
  details: Record<string, unknown>;
  warnings: string[];
}

export async function importDump(dumpPath: string, options: ImportOptions): Promise<ImportResult> {
  const t0 = performance.now();
  const createdAt = new Date().toISOString();
  checkTarget(options.output, options.force === true);
  const st = await stat(dumpPath).catch((err: unknown) => {
    throw new VmpmError(`cannot read ${dumpPath}: ${describeError(err)}`);
  });
  if (!st.isFile()) throw new VmpmError(`${dumpPath} is not a regular file (import reads a dump file)`);
  const fh = await open(dumpPath, 'r');
  let writer: BundleWriter | undefined;
  try {
    // The dump's SHA-256 from the bytes the import reads anyway (plus the few it skips), in file order.
    const digest = new FileDigest(fh, st.size, dumpPath);
    writer = await BundleWriter.create(options.output, { overwrite: options.force === true });
    const imported = await importByContent(fh, st.size, dumpPath, digest, writer, options);
    if (options.signal?.aborted) throw new VmpmError('import interrupted; nothing was written');
    const notes = parseNotes(imported);
    const machine = imported.machine;
    const cpus: CpusSection = machine === undefined ? { arch: 'x86_64', cpus: [] } : cpusFromNotes(notes, machine, `the ${imported.format} dump's ELF notes`);
    if (machine === undefined) imported.warnings.push('the dump does not say its architecture (no NT_PRSTATUS, unknown utsname.machine): no registers imported');
    await writer.addJsonSection(SECTION.cpus, cpus);
    await writer.addJsonSection(SECTION.memmap, memmapOf(imported.ranges));
    if (imported.notes.length > 0) await writer.addRawSection(SECTION.elfNotes, imported.notes);
    const vmcoreinfo = vmcoreinfoBytes(notes) ?? stripNul(imported.vmcoreinfo);
    if (vmcoreinfo) await writer.addRawSection(SECTION.vmcoreinfo, vmcoreinfo);
    const provenance: ImportProvenance = { format: imported.format, path: dumpPath, size: st.size, sha256: await digest.digest(), details: imported.details };
    const manifest: Manifest = importManifest({
      createdAt,
      arch: machine === undefined ? 'x86_64' : archOfMachine(machine),
      cpuCount: cpus.cpus.length,
      capturedBytes: imported.ranges.reduce((a, r) => a + r.length, 0n),
      timings: { total: Math.round(performance.now() - t0) },
      warnings: imported.warnings,
      provenance,
      codec: writer.codec.name,
      ...(imported.notes.length > 0 && machine !== undefined ? { elfNotesMachine: machine } : {}),
    });
    await writer.addJsonSection(SECTION.manifest, manifest);
    const finished = await writer.finish();
    return {
      dump: dumpPath,
      output: options.output,
      format: imported.format,
      sha256: provenance.sha256,
      bundleSha256: finished.sha256,
      arch: manifest.vm.arch,
      cpus: cpus.cpus.length,
      ranges: imported.ranges.length,
      capturedBytes: toHex(imported.ranges.reduce((a, r) => a + r.length, 0n)),
      vmcoreinfo: vmcoreinfo !== undefined,
      durationMs: Math.round(performance.now() - t0),
      warnings: imported.warnings,
    };
  } catch (err) {
    await writer?.abort().catch(() => undefined);
    if (err instanceof VmpmError) throw new VmpmError(err.message.startsWith(dumpPath) ? err.message : `${dumpPath}: ${err.message}`, { cause: err });
    throw new VmpmError(`import of ${dumpPath} failed: ${describeError(err)}`, { cause: err });
  } finally {
    await fh.close();
  }
}

async function importByContent(fh: FileHandle, size: number, path: string, digest: FileDigest, writer: BundleWriter, options: ImportOptions): Promise<Imported> {
  const head = Buffer.alloc(Math.min(size, 32));
  await fh.read(head, 0, head.length, 0);
  if (head.length >= 4 && head.readUInt32BE(0) === 0x7f454c46) {
    const elf = await importElf(new FileWindow(fh, size, path).hashInto(digest).readAhead(), writer, options.onProgress);
    const warnings = [...elf.skipped];
    if (elf.notInFile > 0n) warnings.push(`${elf.notInFile} bytes that PT_LOADs declare are not in the file (filtered): left as holes`);
    return {
      format: 'elf',
      notes: elf.notes,
      machine: elf.machine,
      ranges: elf.loads.map((l) => ({ start: l.paddr, length: l.size })),
      details: { machine: elf.machine, loads: elf.loads.length, aliasesSkipped: elf.skipped.length, notInFile: toHex(elf.notInFile) },
      warnings,
    };
  }
  if (head.toString('latin1', 0, 8) === 'KDUMP   ') return kdumpInto(fh, size, path, digest, writer, 'kdump', {}, options);
  if (isFlattened(head)) return flattenedInto(fh, size, path, digest, writer, options);
  if (head.toString('latin1', 0, 8) === 'DISKDUMP') throw new VmpmError('a DISKDUMP (pre-kdump diskdump) file: not supported; only kdump-compressed files are');
  throw new VmpmError('not a dump vmpm imports: expected an ELF core, a kdump-compressed file ("KDUMP   ") or a flattened makedumpfile stream');
}

/** `digest`: the SHA-256 the reads feed, when `fh` is the dump itself (not a reassembled stream). */
async function kdumpInto(
  fh: FileHandle,
  size: number,
  path: string,
  digest: FileDigest | undefined,
  writer: BundleWriter,
  format: 'kdump' | 'kdump-flattened',
  extra: Record<string, unknown>,
  options: ImportOptions,
): Promise<Imported> {
  const meta = new FileWindow(fh, size, path, 1024 * 1024);
  const data = new FileWindow(fh, size, path).readAhead();
  if (digest) {
    meta.hashInto(digest);
    data.hashInto(digest);
  }
  const k = await importKdump(meta, data, writer, options.onProgress);
  const notes = k.info.notes;
  const machine = machineForKdump(parseElfNotes(notes, true), k.info.header.utsname.machine);
  const imported: Imported = {
    format,
    notes,
    machine,
    ranges: k.ranges,
    details: {
      ...extra,
      headerVersion: k.info.header.headerVersion,
      blockSize: k.info.blockSize,
      maxMapnr: k.info.maxMapnr.toString(),
      dumpLevel: k.info.sub.dumpLevel,
      physBase: k.info.sub.physBase.toString(),
      utsname: k.info.header.utsname,
      nrCpus: k.info.header.nrCpus,
      dumpedPages: k.pages,
      codecs: k.codecs,
    },
    warnings: k.warnings,
  };
  if (k.info.vmcoreinfo) imported.vmcoreinfo = k.info.vmcoreinfo;
  return imported;
}

/** Reassembles a flattened stream into a temporary file beside the output, then reads that. */
async function flattenedInto(fh: FileHandle, size: number, path: string, digest: FileDigest, writer: BundleWriter, options: ImportOptions): Promise<Imported> {
  const temp = join(dirname(resolve(options.output)), `.${basename(options.output)}.kdump-${randomBytes(4).toString('hex')}`);
  const out = await open(temp, 'wx+', 0o600);
  try {
    const maxOffset = BigInt(size) * 2n + (1n << 30n);
    // A flattened stream is thousands of small records (QEMU: one per 16 KiB; a hostile one: millions
    // of 16-byte ones): consecutive ones are merged into large synchronous writes.
    const sink = new SparseWriter(out, temp);
    let stats: Awaited<ReturnType<typeof reassembleFlattened>>;
    try {
      stats = await reassembleFlattened(new FileWindow(fh, size, path).hashInto(digest).readAhead(), (offset, data) => sink.write(offset, data), { maxOffset });
      await sink.finish();
    } finally {
      await sink.close();
    }
    await out.truncate(Number(stats.end));
    return await kdumpInto(out, Number(stats.end), `${path} (reassembled)`, undefined, writer, 'kdump-flattened', { flattenedRecords: stats.records }, options);
  } finally {
    await out.close().catch(() => undefined);
    await unlink(temp).catch(() => undefined);
  }
}

function parseNotes(imported: Imported): ReturnType<typeof parseElfNotes> {
  try {
    return parseElfNotes(imported.notes, true);
  } catch (err) {
    imported.warnings.push(`the dump's ELF notes do not parse (${describeError(err)}): no registers imported`);
    return [];
  }
}

function vmcoreinfoBytes(notes: ReturnType<typeof parseElfNotes>): Buffer | undefined {
  const text = vmcoreinfoFromNotes(notes);
  return text === undefined ? undefined : Buffer.from(text, 'utf8');
}

/** The kdump sub-header's VMCOREINFO (when no note carries it), as text without its NUL padding. */
function stripNul(b: Buffer | undefined): Buffer | undefined {
  if (b === undefined) return undefined;
  const nul = b.indexOf(0);
  return nul < 0 ? b : b.subarray(0, nul);
}

function memmapOf(ranges: Array<{ start: bigint; length: bigint }>): MemmapSection {
  return {
    regions: [...ranges]
      .sort((a, b) => (a.start < b.start ? -1 : 1))
      .map((r) => ({ name: 'dump', kind: 'ram', start: toHex(r.start), end: toHex(r.start + r.length), captured: true })),
    sizeSummary: null,
    memdevs: [],
    memoryDevices: [],
    raw: '',
  };
}
