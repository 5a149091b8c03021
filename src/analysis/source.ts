/**
 * What analysis needs from an opened bundle: the subset of BundleReader (src/bundle) it calls. Written
 * as a structural interface so analysis functions state exactly which capabilities they use. The
 * record types are the bundle's own.
 */
import type { BundleStats, RangeInfo, SectionInfo, VerifyResult } from '../bundle';

export type { BundleStats, SectionInfo };
/** A captured memory range as the bundle's index describes it. */
export type CapturedRange = RangeInfo;

export interface PageIndexEntry {
  addr: bigint;
  zero: boolean;
  digest: Buffer;
}

export interface AnalysisBundle {
  readonly path: string;
  readonly fileSize: number;
  readonly version: { major: number; minor: number };
  /** A slim bundle (format 1.1): page digests without contents. */
  readonly digestsOnly?: boolean;
  sections(): SectionInfo[];
  has(name: string): boolean;
  json<T>(name: string): Promise<T>;
  raw(name: string): Promise<Buffer>;
  /** A section in pieces, digest-checked before the first one (BundleReader.rawChunks). */
  rawChunks(name: string, observe?: (chunk: Buffer) => void): AsyncIterable<Buffer>;
  ranges(): CapturedRange[];
  read(addr: bigint, length: number, options?: { zeroFill?: boolean }): Promise<Buffer>;
  pageDigest(addr: bigint): Buffer | undefined;
  pages(): Iterable<PageIndexEntry>;
  dataPages(options?: { from?: bigint; to?: bigint }): AsyncIterable<{ addr: bigint; data: Buffer }>;
  stats(): BundleStats;
  sha256(): Promise<string>;
  verify(onProgress?: (done: number, total: number) => void): Promise<VerifyResult>;
}
