/**
 * What analysis needs from an opened bundle: the subset of BundleReader (src/bundle) it calls. Written
 * as a structural interface so analysis functions state exactly which capabilities they use.
 */
export interface PageIndexEntry {
  addr: bigint;
  zero: boolean;
  digest: Buffer;
}

export interface CapturedRange {
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

export interface SectionInfo {
  name: string;
  type: 'json' | 'raw';
  offset: number;
  length: number;
  sha256: string;
}

export interface AnalysisBundle {
  readonly path: string;
  readonly fileSize: number;
  readonly version: { major: number; minor: number };
  sections(): SectionInfo[];
  has(name: string): boolean;
  json<T>(name: string): Promise<T>;
  raw(name: string): Promise<Buffer>;
  ranges(): CapturedRange[];
  read(addr: bigint, length: number, options?: { zeroFill?: boolean }): Promise<Buffer>;
  pageDigest(addr: bigint): Buffer | undefined;
  pages(): Iterable<PageIndexEntry>;
  dataPages(options?: { from?: bigint; to?: bigint }): AsyncIterable<{ addr: bigint; data: Buffer }>;
  stats(): BundleStats;
  sha256(): Promise<string>;
  verify(onProgress?: (done: number, total: number) => void): Promise<{ ok: boolean; sha256: string; problems: string[] }>;
}
