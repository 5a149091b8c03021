/**
 * BundleReader: opens a v1 bundle, validates its structure (footer, trailer digest, every table
 * entry against the file size) without touching the body, and reads sections and guest memory on
 * demand. Sections and frames are digest-checked when read; every page handed out is checked
 * against its page digest. Body access and the frame cache live in frame-store.ts, verify() in
 * verify.ts.
 */
import { createHash } from 'node:crypto';
import { constants as fsConstants, promises as fsp } from 'node:fs';
import { FormatError } from '../formats/errors';
import { VmpmError, describeError } from '../util/errors';
import { toHex } from '../util/hex';
import { BundleFormatError } from './errors';
import { fileSha256, FrameStore, readAt } from './frame-store';
import { fsErrorText } from './fs-errors';
import { type Footer, FOOTER_SIZE, HEADER_SIZE, PAGE_SIZE, type RangeEntry, SECTION_TYPE_JSON, type SectionEntry, ZERO_SLOT } from './format';
import { sha256, ZERO_PAGE_DIGEST } from './pages';
import { jsonLimitProblem, MAX_JSON_SECTION_BYTES } from './validate/limits';
import { parseFooter, parseHeader, parseTrailer, type Structure } from './structure';
import { type MemoryTables, withMemoryIndex } from './memory-index';
import { type PageStreamOptions, type StreamedPage, type StreamStats, streamPages } from './page-stream';
import { verifyBundle, type VerifyResult } from './verify';

/** rawChunks() hands out a section in pieces of this size. */
const SECTION_PIECE = 4 * 1024 * 1024;

export { fileSha256 } from './frame-store';
export type { VerifyResult } from './verify';

/** Largest single read() a caller may ask for. */
const MAX_READ = 1024 * 1024 * 1024;

export interface SectionInfo {
  name: string;
  type: 'json' | 'raw';
  offset: number;
  length: number;
  sha256: string;
}

export interface RangeInfo {
  start: bigint;
  length: bigint;
  name?: string;
  pages: number;
  zeroPages: number;
}

export interface BundleStats {
  capturedBytes: bigint;
  pages: number;
  zeroPages: number;
  dataPages: number;
  uniquePages: number;
  frames: number;
  compressedBytes: number;
}

export class BundleReader {
  readonly version: { major: number; minor: number };
  private readonly byAddress: RangeEntry[];
  private readonly store: FrameStore;

  private constructor(
    readonly path: string,
    readonly fileSize: number,
    fh: fsp.FileHandle,
    private readonly footer: Footer,
    private readonly s: Structure,
    version: { major: number; minor: number },
    private readonly headerFlags: number,
    /** A slim bundle: every page has its digest, no page has its contents (vmpm slim). */
    readonly digestsOnly = false,
  ) {
    this.version = version;
    this.store = new FrameStore(path, fh, s);
    this.byAddress = s.ranges.filter((r) => r.pages > 0).sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0));
  }

  static async open(path: string): Promise<BundleReader> {
    let fh: fsp.FileHandle;
    try {
      // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer forever.
      fh = await fsp.open(path, fsConstants.O_RDONLY | fsConstants.O_NONBLOCK);
    } catch (err) {
      throw new VmpmError(`cannot open bundle ${path}: ${fsErrorText(err)}`, { cause: err });
    }
    try {
      const st = await fh.stat();
      if (!st.isFile()) throw new VmpmError(`cannot open bundle ${path}: ${st.isDirectory() ? 'it is a directory, not a bundle file' : 'not a regular file (a bundle must be a seekable file)'}`);
      const size = st.size;
      if (size < HEADER_SIZE + FOOTER_SIZE) {
        throw new BundleFormatError(`${path}: file is ${size} bytes, too short to be a bundle (at least ${HEADER_SIZE + FOOTER_SIZE})`);
      }
      const header = parseHeader(path, await readAt(fh, 0, HEADER_SIZE), size);
      const footer = parseFooter(path, await readAt(fh, size - FOOTER_SIZE, FOOTER_SIZE), size, header);
      const trailerOffset = Number(footer.trailerOffset);
      const trailer = await readAt(fh, trailerOffset, Number(footer.trailerLength));
      const digest = sha256(trailer);
      if (!digest.equals(footer.trailerSha256)) {
        throw new BundleFormatError(
          `${path}: trailer (offset ${trailerOffset}, ${trailer.length} bytes) SHA-256 mismatch: footer says ${footer.trailerSha256.toString('hex')}, data hashes to ${digest.toString('hex')}`,
        );
      }
      const parsed = parseTrailer(path, trailer, header.headerSize, trailerOffset);
      // A slim bundle (format 1.1): its memory tables come from the memory-index section.
      const { structure, digestsOnly } = await withMemoryIndex(path, parsed, header.headerSize, trailerOffset, (o, n) => readAt(fh, o, n));
      return new BundleReader(path, size, fh, footer, structure, { major: header.major, minor: header.minor }, header.flags, digestsOnly);
    } catch (err) {
      await fh.close().catch(() => undefined);
      // readAt() does not know the path (a file that shrank between stat and read).
      // A bounds check of formats/byte-reader (structure.ts) names the field and offset.
      if (err instanceof FormatError) throw new BundleFormatError(`${path}: ${err.problem}`);
      if (err instanceof BundleFormatError && !err.message.startsWith(path)) throw new BundleFormatError(`${path}: ${err.message}`);
      if (err instanceof VmpmError) throw err;
      throw new VmpmError(`cannot read bundle ${path}: ${fsErrorText(err)}`, { cause: err });
    }
  }

  /**
   * verify() for a path that may not even open: structural problems become the problem list, and
   * the whole-file SHA-256 is still reported.
   */
  static async verifyFile(path: string, onProgress?: (done: number, total: number) => void): Promise<VerifyResult & { reader?: BundleReader }> {
    let reader: BundleReader;
    try {
      reader = await BundleReader.open(path);
    } catch (err) {
      if (!(err instanceof BundleFormatError)) throw err;
      return { ok: false, sha256: await fileSha256(path), problems: [err.message] };
    }
    const result = await reader.verify(onProgress);
    return { ...result, reader };
  }

  sections(): SectionInfo[] {
    return this.s.sections.map((e) => ({
      name: e.name,
      type: e.type === SECTION_TYPE_JSON ? 'json' : 'raw',
      offset: e.offset,
      length: e.length,
      sha256: e.sha256.toString('hex'),
    }));
  }

  has(name: string): boolean {
    return this.s.sections.some((e) => e.name === name);
  }

  async raw(name: string): Promise<Buffer> {
    const e = this.section(name);
    const data = await this.store.readBody(e.offset, e.length, `section "${name}"`);
    const digest = sha256(data);
    if (!digest.equals(e.sha256)) {
      throw new BundleFormatError(
        `${this.path}: section "${name}" (offset ${e.offset}, ${e.length} bytes) SHA-256 mismatch: index says ${e.sha256.toString('hex')}, data hashes to ${digest.toString('hex')}`,
      );
    }
    return data;
  }

  /**
   * A section's bytes in pieces of at most 4 MiB, so a section of any size (up to 2 GiB) is read in
   * bounded memory. The whole section is hashed before the first piece is handed out (no unverified
   * byte reaches the caller; `observe` sees each piece of that pass, e.g. to classify the bytes), and
   * hashed again as the pieces go out: a file changed in between fails at the end.
   */
  async *rawChunks(name: string, observe?: (chunk: Buffer) => void): AsyncGenerator<Buffer> {
    const e = this.section(name);
    const first = createHash('sha256');
    await this.store.hashRange(first, e.offset, e.offset + e.length, undefined, observe);
    const d = first.digest();
    if (!d.equals(e.sha256)) {
      throw new BundleFormatError(
        `${this.path}: section "${name}" (offset ${e.offset}, ${e.length} bytes) SHA-256 mismatch: index says ${e.sha256.toString('hex')}, data hashes to ${d.toString('hex')}`,
      );
    }
    const h = createHash('sha256');
    for (let done = 0; done < e.length; ) {
      const chunk = await this.store.readBody(e.offset + done, Math.min(SECTION_PIECE, e.length - done), `section "${name}"`);
      h.update(chunk);
      done += chunk.length;
      yield chunk;
    }
    const again = h.digest();
    if (!again.equals(e.sha256)) throw new BundleFormatError(`${this.path}: section "${name}" changed while it was read (SHA-256 ${again.toString('hex')}, index says ${e.sha256.toString('hex')})`);
  }

  /**
   * A JSON section, parsed within the limits of validate/limits.ts (any JSON: this is the container
   * layer). Readers of the sections vmpm knows go through readJsonSection() (validate/read.ts), which
   * also checks the schema.
   */
  async json<T>(name: string): Promise<T> {
    const e = this.section(name);
    if (e.type !== SECTION_TYPE_JSON) throw new VmpmError(`${this.path}: section "${name}" is raw, not JSON`);
    const refuse = (why: string): BundleFormatError => new BundleFormatError(`${this.path}: bundle section "${name}" ${why}`);
    // Checked before reading: a section may be up to 2 GiB on disk.
    if (e.length > MAX_JSON_SECTION_BYTES) throw refuse(`is ${e.length} bytes, over the ${MAX_JSON_SECTION_BYTES}-byte (64 MiB) limit for JSON sections`);
    const data = await this.raw(name);
    const problem = jsonLimitProblem(data);
    if (problem !== undefined) throw refuse(problem);
    let value: unknown;
    try {
      value = JSON.parse(data.toString('utf8'));
    } catch (err) {
      throw new BundleFormatError(`${this.path}: section "${name}" is not valid JSON: ${describeError(err)}`);
    }
    return value as T;
  }

  ranges(): RangeInfo[] {
    return this.s.ranges.map((r) => {
      const info: RangeInfo = { start: r.start, length: r.length, pages: r.pages, zeroPages: r.zeroPages };
      if (r.name !== undefined) info.name = r.name;
      return info;
    });
  }

  /**
   * Reads guest-physical memory. Bytes no range covers are an error naming the first such address,
   * unless `zeroFill` is set, in which case they read as zero.
   */
  async read(addr: bigint, length: number, options: { zeroFill?: boolean } = {}): Promise<Buffer> {
    if (!Number.isInteger(length) || length < 0 || length > MAX_READ) {
      throw new VmpmError(`read length ${length} is not supported (expected 0..${MAX_READ} bytes)`);
    }
    this.requireContents();
    if (addr < 0n || addr + BigInt(length) > 1n << 64n) throw new VmpmError(`read of ${length} bytes at ${toHex(addr < 0n ? 0n : addr)} runs outside the 64-bit address space`);
    const out = Buffer.alloc(length);
    let done = 0;
    while (done < length) {
      const cur = addr + BigInt(done);
      const range = this.rangeAt(cur);
      if (!range) {
        const next = this.byAddress.find((r) => r.start > cur);
        if (!options.zeroFill) {
          throw new VmpmError(
            `address ${toHex(cur)} is not captured in ${this.path} (no memory range covers it${next ? `; the next range starts at ${toHex(next.start)}` : ''})`,
          );
        }
        const gap = next ? next.start - cur : BigInt(length - done);
        done += Number(gap < BigInt(length - done) ? gap : BigInt(length - done));
        continue;
      }
      const rel = cur - range.start;
      const pageNo = Number(rel / BigInt(PAGE_SIZE));
      const inPage = Number(rel % BigInt(PAGE_SIZE));
      const rangeLeft = range.length - rel;
      const n = Math.min(PAGE_SIZE - inPage, length - done, Number(rangeLeft < BigInt(PAGE_SIZE) ? rangeLeft : BigInt(PAGE_SIZE)));
      const page = await this.store.pageData(range, pageNo);
      page.copy(out, done, inPage, inPage + n);
      done += n;
    }
    return out;
  }

  /** The memory tables (ranges in page-index order, page index, slot digests): what a slim bundle keeps. */
  memoryTables(): MemoryTables {
    return { ranges: this.s.ranges, pageIndex: this.s.pageIndex, digests: this.s.digests, slotCount: this.s.slotCount };
  }

  /** SHA-256 of the 4 KiB page containing `addr` (zero pages: sha256 of 4096 zero bytes); undefined if not captured. */
  pageDigest(addr: bigint): Buffer | undefined {
    const range = this.rangeAt(addr);
    if (!range) return undefined;
    const slot = this.s.pageIndex[range.firstPage + Number((addr - range.start) / BigInt(PAGE_SIZE))]!;
    return slot === ZERO_SLOT ? ZERO_PAGE_DIGEST : this.store.slotDigest(slot);
  }

  /**
   * Every captured page in ascending address order, from the index alone (no decompression). A
   * hand-written iterator (no generator, one bigint add per page) because diff walks millions of pages.
   */
  pages(): Iterable<{ addr: bigint; zero: boolean; digest: Buffer }> {
    const ranges = this.byAddress;
    const index = this.s.pageIndex;
    const digests = this.s.digests;
    return {
      [Symbol.iterator]: () => {
        let r = -1;
        let p = 0;
        let end = 0;
        let addr = 0n;
        const step = BigInt(PAGE_SIZE);
        return {
          next: (): IteratorResult<{ addr: bigint; zero: boolean; digest: Buffer }> => {
            while (p >= end) {
              if (++r >= ranges.length) return { done: true, value: undefined };
              const range = ranges[r]!;
              p = range.firstPage;
              end = range.firstPage + range.pages;
              addr = range.start - step;
            }
            const slot = index[p++]!;
            addr += step;
            if (slot === ZERO_SLOT) return { done: false, value: { addr, zero: true, digest: ZERO_PAGE_DIGEST } };
            return { done: false, value: { addr, zero: false, digest: digests.subarray(slot * 32, slot * 32 + 32) } };
          },
        };
      },
    };
  }

  /** Non-zero pages in ascending address order within [from, to), each digest-checked; memory stays bounded by the frame cache. */
  async *dataPages(options: { from?: bigint; to?: bigint } = {}): AsyncIterable<{ addr: bigint; data: Buffer }> {
    const from = options.from ?? 0n;
    const to = options.to ?? 1n << 64n;
    for (const r of this.byAddress) {
      const end = r.start + BigInt(r.pages * PAGE_SIZE);
      if (end <= from || r.start >= to) continue;
      const first = r.start >= from ? 0 : Number((from - r.start) / BigInt(PAGE_SIZE));
      for (let p = first; p < r.pages; p++) {
        const addr = r.start + BigInt(p * PAGE_SIZE);
        if (addr >= to) break;
        if (this.s.pageIndex[r.firstPage + p] === ZERO_SLOT) continue;
        this.requireContents();
        yield { addr, data: Buffer.from(await this.store.pageData(r, p)) };
      }
    }
  }

  /**
   * Every captured page in ascending address order (zero pages as null), decoded by worker threads
   * ahead of `fn` with bounded memory (page-stream.ts, which also says what is verified). For
   * consumers of a whole bundle; `read()` and `dataPages()` stay the random-access path.
   */
  async streamPages(fn: (addr: bigint, page: StreamedPage | null) => void | Promise<void>, options: PageStreamOptions = {}): Promise<StreamStats> {
    this.requireContents();
    return streamPages(this.store, this.byAddress, fn, options);
  }

  stats(): BundleStats {
    let capturedBytes = 0n;
    let pages = 0;
    let zeroPages = 0;
    for (const r of this.s.ranges) {
      capturedBytes += r.length;
      pages += r.pages;
      zeroPages += r.zeroPages;
    }
    const compressedBytes = this.s.frames.reduce((a, f) => a + f.compressedLength, 0);
    return { capturedBytes, pages, zeroPages, dataPages: pages - zeroPages, uniquePages: this.s.slotCount, frames: this.s.frames.length, compressedBytes };
  }

  /** SHA-256 of the whole file (what `sha256sum` prints), streamed. */
  async sha256(): Promise<string> {
    const h = createHash('sha256');
    await this.store.hashRange(h, 0, this.fileSize);
    return h.digest('hex');
  }

  /**
   * Checks everything: the whole-file digest in the footer, every section digest, every frame's
   * digest, decompression and size, and every stored page against its page digest.
   */
  async verify(onProgress?: (done: number, total: number) => void): Promise<VerifyResult> {
    return verifyBundle(
      { store: this.store, fileSize: this.fileSize, footer: this.footer, headerFlags: this.headerFlags, minor: this.version.minor, digestsOnly: this.digestsOnly },
      onProgress,
    );
  }

  async close(): Promise<void> {
    await this.store.close();
  }

  private section(name: string): SectionEntry {
    const e = this.s.sections.find((x) => x.name === name);
    if (!e) throw new VmpmError(`${this.path} has no section "${name}" (it has: ${this.s.sections.map((x) => x.name).join(', ') || 'none'})`);
    return e;
  }

  private requireContents(): void {
    if (this.digestsOnly) {
      throw new VmpmError(`${this.path} is a slim bundle: it has every page's digest but no memory contents (made by vmpm slim); read the full bundle`);
    }
  }

  private rangeAt(addr: bigint): RangeEntry | undefined {
    const list = this.byAddress;
    let lo = 0;
    let hi = list.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const r = list[mid]!;
      if (addr < r.start) hi = mid - 1;
      else if (addr >= r.start + r.length) lo = mid + 1;
      else return r;
    }
    return undefined;
  }
}
