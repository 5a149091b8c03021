/**
 * `vmpm slim`: a bundle with everything but the memory contents — every section (registers,
 * memory map, errors, events, transcript, VMCOREINFO, kernel log, attachments unless left out)
 * copied byte for byte, and the memory tables (ranges, page index, page digests) in a
 * zstd-compressed memory-index section (format 1.1). `diff` against the full bundle still compares every page.
 */
import { BundleReader, BundleWriter, compressMemoryIndex, SLIM_SECTION, type SlimSection } from '../bundle';
import { VmpmError } from '../util/errors';
import { currentActor, sourceOf } from './actor';
import { interrupted } from './files';

export interface SlimOptions {
  attachments?: boolean;
  force?: boolean;
  signal?: AbortSignal;
}

export interface SlimResult {
  input: string;
  output: string;
  inputBytes: number;
  outputBytes: number;
  sha256: string;
  record: SlimSection;
}

export async function slimBundle(input: string, output: string, options: SlimOptions = {}): Promise<SlimResult> {
  const src = await BundleReader.open(input);
  try {
    if (src.digestsOnly) throw new VmpmError(`${input} is already a slim bundle`);
    const source = await sourceOf(src);
    if (options.signal?.aborted) throw interrupted(options.signal);
    const stats = src.stats();
    const omittedSections = options.attachments === false ? src.sections().filter((s) => s.name.startsWith('attachment/')).map((s) => s.name) : [];
    const record: SlimSection = {
      ...currentActor(),
      source,
      omitted: ['memory contents', ...(omittedSections.length ? ['attachments'] : [])],
      omittedSections,
      pages: stats.pages,
      dataPages: stats.dataPages,
    };
    const w = await BundleWriter.create(output, { overwrite: options.force === true, digestsOnly: true, workers: 0 });
    try {
      for (const s of src.sections()) {
        if (omittedSections.includes(s.name) || s.name === SLIM_SECTION) continue;
        await w.copySection(s.name, s.type, await src.raw(s.name));
        if (options.signal?.aborted) throw interrupted(options.signal);
      }
      await w.addMemoryIndex(await compressMemoryIndex(src.memoryTables()));
      await w.addJsonSection(SLIM_SECTION, record);
      const done = await w.finish();
      return { input, output, inputBytes: src.fileSize, outputBytes: done.size, sha256: done.sha256, record };
    } catch (err) {
      await w.abort();
      throw err;
    }
  } finally {
    await src.close();
  }
}
