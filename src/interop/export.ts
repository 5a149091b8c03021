/**
 * `vmpm export`: writes a bundle's memory and vCPU state in a format the classic tools read (ELF
 * core for gdb/drgn/crash/makedumpfile, kdump-compressed for crash/makedumpfile, raw + JSON ranges
 * for everything else). Streamed: memory is read page by page from the bundle and written with
 * positional writes, never held whole; the output appears under its name only when complete.
 */
import { writeFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { BundleReader } from '../bundle';
import { VmpmError, describeError } from '../util/errors';
import { writeElf } from './export-elf';
import { writeKdump } from './export-kdump';
import { rawSideFile, writeRaw } from './export-raw';
import { exportSource } from './export-source';
import { checkTarget, OutputFile } from './output';
import type { FormatResult } from './pages';

export type ExportFormat = 'elf' | 'kdump' | 'raw';
export const EXPORT_FORMATS: readonly ExportFormat[] = ['elf', 'kdump', 'raw'];

export interface ExportOptions {
  format: ExportFormat;
  output: string;
  force?: boolean;
  signal?: AbortSignal;
  onProgress?: (done: number, total: number) => void;
}

export interface ExportResult {
  bundle: string;
  format: ExportFormat;
  output: string;
  /** The raw format's JSON side file. */
  sideFile?: string;
  fileSize: string;
  ranges: number;
  cpus: number;
  dataPages: number;
  zeroPages: number;
  details: Record<string, unknown>;
  durationMs: number;
  warnings: string[];
}

export function rawSideFileName(output: string): string {
  return `${output}.ranges.json`;
}

export async function exportBundle(bundlePath: string, options: ExportOptions): Promise<ExportResult> {
  const t0 = performance.now();
  const force = options.force === true;
  checkTarget(options.output, force);
  const side = options.format === 'raw' ? rawSideFileName(options.output) : undefined;
  if (side) checkTarget(side, force);
  const reader = await BundleReader.open(bundlePath);
  let out: OutputFile | undefined;
  try {
    const src = await exportSource(reader);
    out = await OutputFile.create(options.output, force);
    const abortable = options.signal;
    const progress = (done: number, total: number): void => {
      if (abortable?.aborted) throw new VmpmError('export interrupted; nothing was written');
      options.onProgress?.(done, total);
    };
    let result: FormatResult;
    if (options.format === 'elf') result = await writeElf(src, out, progress);
    else if (options.format === 'kdump') result = await writeKdump(src, out, progress);
    else result = await writeRaw(src, out, progress);
    if (abortable?.aborted) throw new VmpmError('export interrupted; nothing was written');
    if (side) {
      const sideOut = await OutputFile.create(side, force);
      try {
        await writeFile(sideOut.fh, rawSideFile(src, basename(options.output), result.fileSize));
        await sideOut.commit();
      } catch (err) {
        await sideOut.abort();
        throw err;
      }
    }
    await out.commit(result.fileSize);
    const exported: ExportResult = {
      bundle: bundlePath,
      format: options.format,
      output: options.output,
      fileSize: `0x${result.fileSize.toString(16)}`,
      ranges: src.ranges.length,
      cpus: src.cpus.length,
      dataPages: result.dataPages,
      zeroPages: result.zeroPages,
      details: result.details,
      durationMs: Math.round(performance.now() - t0),
      warnings: src.warnings,
    };
    if (side) exported.sideFile = side;
    return exported;
  } catch (err) {
    await out?.abort();
    if (err instanceof VmpmError) throw err;
    throw new VmpmError(`export of ${bundlePath} failed: ${describeError(err)}`, { cause: err });
  } finally {
    await reader.close();
  }
}
