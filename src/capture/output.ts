/**
 * Where a capture is written and what goes in beside the guest's state: the output file (checked before
 * the guest is touched), the `.partial.vmpm` name for --keep-partial, and attached files.
 */
import { lstat, readFile, rm, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { BundleWriter } from '../bundle';
import { SECTION, type Manifest } from '../bundle/schema';
import { VmpmError, describeError } from '../util/errors';

const MAX_ATTACHMENT_BYTES = 256 * 1024 * 1024;

/** `case.vmpm` -> `case.partial.vmpm`: the name says it is not a complete capture. */
export function partialPathFor(output: string): string {
  const base = basename(output);
  const stem = base.endsWith('.vmpm') ? base.slice(0, -'.vmpm'.length) : base;
  return join(dirname(output), `${stem}.partial.vmpm`);
}


/** Reads every attachment up front: a bad path must fail before the guest is stopped. */
export async function readAttachments(list: Array<{ name: string; path: string }>): Promise<Array<{ name: string; data: Buffer }>> {
  const out: Array<{ name: string; data: Buffer }> = [];
  for (const a of list) {
    const info = await stat(a.path).catch((err: unknown) => {
      throw new VmpmError(`cannot attach ${a.path}: ${describeError(err)}`);
    });
    if (!info.isFile()) throw new VmpmError(`cannot attach ${a.path}: not a regular file`);
    if (info.size > MAX_ATTACHMENT_BYTES) throw new VmpmError(`cannot attach ${a.path}: ${info.size} bytes is over the 256 MiB limit`);
    out.push({ name: a.name, data: await readFile(a.path) });
  }
  return out;
}

const CREATE_ERRNO_TEXT: Record<string, string> = {
  ENOENT: 'its directory does not exist',
  ENOTDIR: 'a component of its directory is not a directory',
  EACCES: 'permission denied',
  EPERM: 'permission denied',
  EROFS: 'read-only file system',
  ENOSPC: 'no space left on device',
};

/** The writer names its temp file; the user needs to hear about the path they asked for. */
function explainCreateFailure(err: unknown, target: string): VmpmError {
  const cause = err instanceof Error ? (err.cause as { code?: string } | undefined) : undefined;
  const text = cause?.code ? CREATE_ERRNO_TEXT[cause.code] : undefined;
  if (text === undefined) return err instanceof VmpmError ? err : new VmpmError(`cannot write ${target}: ${describeError(err)}`);
  return new VmpmError(`cannot write ${target}: ${text} (${dirname(target)})`, { cause: err });
}

export interface OpenedOutput {
  writer: BundleWriter;
  /** The file being written: the output itself, or its `.partial.vmpm` name with keepPartial. */
  target: string;
}

/** Creates the bundle writer; an existing output or an unwritable directory fails here, before any stop. */
export async function openOutput(options: { output: string; overwrite?: boolean; keepPartial?: boolean; level?: number }): Promise<OpenedOutput> {
  const target = options.keepPartial ? partialPathFor(options.output) : options.output;
  if (options.keepPartial) {
    // The writer checks only the .partial.vmpm name; the final rename onto the output comes after the
    // whole capture, so whatever would make it fail is refused now.
    const existing = await lstat(options.output).catch(() => undefined);
    if (existing && !options.overwrite) {
      throw new VmpmError(`${options.output} already exists (refusing to overwrite it; choose another name or allow overwriting)`);
    }
    if (existing && !existing.isFile() && !existing.isSymbolicLink()) {
      throw new VmpmError(`cannot write bundle ${options.output}: it is ${existing.isDirectory() ? 'a directory' : 'not a regular file'} (only a regular file can be overwritten)`);
    }
  }
  // With keepPartial the work file is ours to replace; the real output is checked above.
  const writerOptions: { overwrite: boolean; level?: number } = { overwrite: options.keepPartial ? true : options.overwrite ?? false };
  if (options.level !== undefined) writerOptions.level = options.level;
  const writer = await BundleWriter.create(target, writerOptions).catch((err: unknown) => {
    throw explainCreateFailure(err, target);
  });
  return { writer, target };
}

/**
 * --keep-partial: seal what was written so far under the `.partial.vmpm` name with a manifest that
 * says why it is incomplete. If even that fails (disk full, a range still open), nothing is left.
 */
export async function sealPartial(out: OpenedOutput, manifest: Manifest): Promise<void> {
  try {
    await out.writer.addJsonSection(SECTION.manifest, manifest);
    await out.writer.finish();
  } catch {
    await out.writer.abort();
    await rm(out.target, { force: true }).catch(() => undefined);
  }
}
