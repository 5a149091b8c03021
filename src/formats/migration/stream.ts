/**
 * A bounded push parser of QEMU's migration stream (QEVM version 3), for the RAM it carries.
 *
 * Layout (migration/savevm.c, migration/ram.c; QEMU 7.2): the magic "QEVM" and version 3; a
 * configuration section (the machine type); then sections, each a type byte:
 *   START/FULL  be32 section id, u8 length + idstr, be32 instance id, be32 version, content
 *   PART/END    be32 section id, content
 *   FOOTER      0x7e, be32 section id (after each section)
 *   EOF         0x00, then VMDESCRIPTION 0x06, be32 length, JSON describing every device field
 * The `ram` section's content is a run of page records, each a be64 word of (offset | flags): the
 * block list (MEM_SIZE: total, then per block u8 length + idstr + be64 length), a page (PAGE: 4096
 * bytes), a page filled with one byte (ZERO: the byte), each naming its block unless CONTINUE says
 * "same block as before"; EOS ends the part.
 *
 * Device sections cannot be delimited without the field description, which comes last; so from the
 * first non-RAM section on the parser keeps the bytes (bounded) and hands them to device-state.ts at
 * the end. RAM records are returned as they are parsed; nothing else about the stream is held.
 * Hostile input (bad magic, unknown flags, a name or length past the end, a page outside its block, a
 * block list that does not add up, truncation) fails with MigrationFormatError, never with a crash,
 * a hang or an allocation larger than the bounds below.
 */
import { ByteQueue } from './byte-queue';
import { FLAG_MASK, PAGE_SIZE, QEVM_MAGIC, QEVM_VERSION, RAM_FLAG, RAM_SECTION_NAME, RAM_SECTION_VERSION, SECTION_TYPE } from './constants';
import { MigrationFormatError } from './errors';

export interface RamBlock {
  /** QEMU's RAMBlock idstr, e.g. "pc.ram", "/rom@etc/acpi/tables". */
  id: string;
  /** used_length in bytes. */
  length: number;
}

export type MigrationRecord =
  | { kind: 'blocks'; blocks: RamBlock[] }
  /** `data` is a 4096-byte view, valid until the next call to push(). */
  | { kind: 'page'; block: RamBlock; offset: number; data: Buffer }
  | { kind: 'fill'; block: RamBlock; offset: number; fill: number };

export interface MigrationParserOptions {
  /** Largest device-state tail kept (everything after the RAM). Default 64 MiB. */
  maxTailBytes?: number;
  /** Most RAM blocks accepted in the block list. Default 4096. */
  maxBlocks?: number;
}

export interface MigrationStreamEnd {
  /** Machine type from the configuration section, e.g. "pc-i440fx-7.2". */
  machine: string;
  blocks: RamBlock[];
  /** Everything after the RAM section: device sections, EOF, the vmdesc. */
  tail: Buffer;
  stats: { pageRecords: number; fillRecords: number; ramParts: number };
}

type State = 'magic' | 'top' | 'ram' | 'tail';

const MAX_IDSTR = 255;

export class MigrationStreamParser {
  private readonly q = new ByteQueue();
  private state: State = 'magic';
  private machine = '';
  private blocks: RamBlock[] | undefined;
  private readonly byId = new Map<string, RamBlock>();
  private ramSectionId: number | undefined;
  /** Section id of the last START/PART/END/FULL header, which the next footer must repeat. */
  private lastSectionId: number | undefined;
  private lastBlock: RamBlock | undefined;
  private readonly tail: Buffer[] = [];
  private tailBytes = 0;
  private ended = false;
  private readonly maxTailBytes: number;
  private readonly maxBlocks: number;
  readonly stats = { pageRecords: 0, fillRecords: 0, ramParts: 0 };

  constructor(options: MigrationParserOptions = {}) {
    this.maxTailBytes = options.maxTailBytes ?? 64 * 1024 * 1024;
    this.maxBlocks = options.maxBlocks ?? 4096;
  }

  /** Bytes of stream consumed so far. */
  get offset(): number {
    return this.q.consumed;
  }

  /**
   * Adds received bytes and returns the RAM records now complete, in stream order. Pages are views of
   * the pushed chunks, valid until the next push().
   */
  push(chunk: Buffer): MigrationRecord[] {
    if (this.ended) throw new MigrationFormatError('data pushed after the end of the stream');
    if (this.state === 'tail') {
      this.keepTail(chunk);
      return [];
    }
    this.q.push(chunk);
    const out: MigrationRecord[] = [];
    while (this.step(out)) {
      /* one record or header per step */
    }
    return out;
  }

  /** The peer closed the stream: checks that it ended where a stream may end, and returns the tail. */
  end(): MigrationStreamEnd {
    if (this.ended) throw new MigrationFormatError('end() called twice');
    this.ended = true;
    if (this.state !== 'tail') {
      const where = this.state === 'ram' ? 'inside the RAM section' : this.state === 'magic' ? 'before its header' : 'before any device state';
      const partial = this.q.length > 0 ? ` (${this.q.length} bytes of an incomplete record left)` : '';
      throw new MigrationFormatError(`migration stream truncated ${where} at offset ${this.q.consumed}${partial}`);
    }
    if (!this.blocks) throw new MigrationFormatError('migration stream has no RAM block list');
    return { machine: this.machine, blocks: this.blocks, tail: Buffer.concat(this.tail, this.tailBytes), stats: { ...this.stats } };
  }

  private fail(what: string): never {
    throw new MigrationFormatError(`migration stream offset ${this.q.consumed}: ${what}`);
  }

  private keepTail(chunk: Buffer): void {
    this.tailBytes += chunk.length;
    if (this.tailBytes > this.maxTailBytes) {
      this.fail(`device state after the RAM is larger than ${this.maxTailBytes} bytes (limit)`);
    }
    this.tail.push(Buffer.from(chunk)); // a copy: the caller may reuse its chunk
  }

  /** Parses one unit (header, section header, footer or RAM record); false when more bytes are needed. */
  private step(out: MigrationRecord[]): boolean {
    switch (this.state) {
      case 'magic':
        return this.readMagic();
      case 'top':
        return this.readTop();
      case 'ram':
        return this.readRamRecord(out);
      case 'tail':
        return false;
    }
  }

  private readMagic(): boolean {
    if (!this.q.has(8)) return false;
    const magic = this.q.uint32At(0);
    if (magic !== QEVM_MAGIC) this.fail(`not a QEMU migration stream (magic 0x${magic.toString(16).padStart(8, '0')}, expected "QEVM")`);
    const version = this.q.uint32At(4);
    if (version !== QEVM_VERSION) this.fail(`migration stream version ${version} is not supported (expected ${QEVM_VERSION})`);
    this.q.skip(8);
    this.state = 'top';
    return true;
  }

  private readTop(): boolean {
    if (!this.q.has(1)) return false;
    const type = this.q.byteAt(0);
    switch (type) {
      case SECTION_TYPE.configuration:
        return this.readConfiguration();
      case SECTION_TYPE.start:
      case SECTION_TYPE.full:
        return this.readSectionStart(type);
      case SECTION_TYPE.part:
      case SECTION_TYPE.end:
        return this.readSectionPart(type);
      case SECTION_TYPE.footer: {
        if (!this.q.has(5)) return false;
        const id = this.q.uint32At(1);
        if (id !== this.lastSectionId) this.fail(`section footer names section ${id}, expected ${this.lastSectionId ?? 'none'}`);
        this.q.skip(5);
        return true;
      }
      case SECTION_TYPE.eof:
        this.enterTail();
        return false;
      case SECTION_TYPE.command:
        return this.fail('QEMU_VM_COMMAND records (postcopy, colo) are not supported');
      default:
        return this.fail(`unknown section type 0x${type.toString(16).padStart(2, '0')}`);
    }
  }

  private readConfiguration(): boolean {
    if (this.machine !== '') this.fail('a second configuration section');
    if (!this.q.has(5)) return false;
    const len = this.q.uint32At(1);
    if (len === 0 || len > MAX_IDSTR) this.fail(`configuration names a machine type of ${len} bytes (expected 1..${MAX_IDSTR})`);
    if (!this.q.has(5 + len)) return false;
    this.machine = this.q.peek(5, len).toString('latin1');
    this.q.skip(5 + len);
    if (this.q.has(1) && this.q.byteAt(0) === SECTION_TYPE.subsection) {
      this.fail('configuration subsections (target page bits, capabilities, uuid) are not supported');
    }
    return true;
  }

  private readSectionStart(type: number): boolean {
    if (!this.q.has(6)) return false;
    const id = this.q.uint32At(1);
    const nameLen = this.q.byteAt(5);
    if (!this.q.has(6 + nameLen + 8)) return false;
    const name = this.q.peek(6, nameLen).toString('latin1');
    const instance = this.q.uint32At(6 + nameLen);
    const version = this.q.uint32At(10 + nameLen);
    if (type === SECTION_TYPE.start && name === RAM_SECTION_NAME && instance === 0) {
      if (this.ramSectionId !== undefined) this.fail('a second RAM section');
      if (version !== RAM_SECTION_VERSION) this.fail(`RAM section version ${version} is not supported (expected ${RAM_SECTION_VERSION})`);
      this.q.skip(14 + nameLen);
      this.ramSectionId = id;
      this.lastSectionId = id;
      this.state = 'ram';
      this.stats.ramParts++;
      return true;
    }
    // The first device section: from here on the bytes are kept for the vmdesc-driven decoder.
    this.enterTail();
    return false;
  }

  private readSectionPart(type: number): boolean {
    if (!this.q.has(5)) return false;
    const id = this.q.uint32At(1);
    if (id !== this.ramSectionId) {
      if (type === SECTION_TYPE.part) this.fail(`section part for unknown section ${id}`);
      this.enterTail();
      return false;
    }
    this.q.skip(5);
    this.lastSectionId = id;
    this.state = 'ram';
    this.stats.ramParts++;
    return true;
  }

  private enterTail(): void {
    if (!this.blocks) this.fail('device state before any RAM block list');
    this.state = 'tail';
    const rest = this.q.drain();
    if (rest.length > 0) this.keepTail(rest);
  }

  /** One RAM record: the block list, a page, a filled page, or the end of the part. */
  private readRamRecord(out: MigrationRecord[]): boolean {
    if (!this.q.has(8)) return false;
    const hi = this.q.uint32At(0);
    const lo = this.q.uint32At(4);
    const flags = lo & FLAG_MASK;
    const addr = hi * 0x1_0000_0000 + (lo - flags);
    if (flags === RAM_FLAG.eos) {
      this.q.skip(8);
      this.state = 'top';
      return true;
    }
    if (flags === RAM_FLAG.memSize) return this.readBlockList(addr, out);
    const kind = flags & ~RAM_FLAG.continue;
    if (kind !== RAM_FLAG.zero && kind !== RAM_FLAG.page) {
      this.fail(`RAM record flags 0x${flags.toString(16)} are not supported (xbzrle, compression, multifd and rdma streams are not read)`);
    }
    let pos = 8;
    let block: RamBlock | undefined;
    if (flags & RAM_FLAG.continue) {
      block = this.lastBlock;
      if (!block) this.fail('a page record continues a block, but no block was named before');
    } else {
      if (!this.q.has(9)) return false;
      const nameLen = this.q.byteAt(8);
      if (!this.q.has(9 + nameLen)) return false;
      const name = this.q.peek(9, nameLen).toString('latin1');
      block = this.byId.get(name);
      if (!block) this.fail(`page record names RAM block ${JSON.stringify(name)}, which is not in the block list`);
      pos = 9 + nameLen;
    }
    if (addr + PAGE_SIZE > roundUpToPage(block.length)) {
      this.fail(`page at offset 0x${addr.toString(16)} lies outside RAM block ${JSON.stringify(block.id)} of 0x${block.length.toString(16)} bytes`);
    }
    if (kind === RAM_FLAG.zero) {
      if (!this.q.has(pos + 1)) return false;
      out.push({ kind: 'fill', block, offset: addr, fill: this.q.byteAt(pos) });
      this.q.skip(pos + 1);
      this.stats.fillRecords++;
    } else {
      if (!this.q.has(pos + PAGE_SIZE)) return false;
      out.push({ kind: 'page', block, offset: addr, data: this.q.peek(pos, PAGE_SIZE) });
      this.q.skip(pos + PAGE_SIZE);
      this.stats.pageRecords++;
    }
    this.lastBlock = block;
    return true;
  }

  /** MEM_SIZE: the block list, which must add up to the total in the record's address word. */
  private readBlockList(total: number, out: MigrationRecord[]): boolean {
    if (this.blocks) this.fail('a second RAM block list');
    if (!Number.isSafeInteger(total)) this.fail('RAM block list total is too large');
    const blocks: RamBlock[] = [];
    let pos = 8;
    let sum = 0;
    while (sum < total) {
      if (blocks.length >= this.maxBlocks) this.fail(`more than ${this.maxBlocks} RAM blocks`);
      if (!this.q.has(pos + 1)) return false;
      const nameLen = this.q.byteAt(pos);
      if (nameLen === 0) this.fail('a RAM block with an empty name');
      if (!this.q.has(pos + 1 + nameLen + 8)) return false;
      const id = this.q.peek(pos + 1, nameLen).toString('latin1');
      const hi = this.q.uint32At(pos + 1 + nameLen);
      const lo = this.q.uint32At(pos + 5 + nameLen);
      const length = hi * 0x1_0000_0000 + lo;
      if (!Number.isSafeInteger(length) || length === 0) this.fail(`RAM block ${JSON.stringify(id)} has length ${length}`);
      if (blocks.some((b) => b.id === id)) this.fail(`RAM block ${JSON.stringify(id)} is listed twice`);
      blocks.push({ id, length });
      sum += length;
      pos += 1 + nameLen + 8;
    }
    if (sum !== total) this.fail(`RAM block lengths add up to 0x${sum.toString(16)}, the list says 0x${total.toString(16)}`);
    this.q.skip(pos);
    this.blocks = blocks;
    for (const b of blocks) this.byId.set(b.id, b);
    out.push({ kind: 'blocks', blocks });
    return true;
  }
}

function roundUpToPage(n: number): number {
  return Math.ceil(n / PAGE_SIZE) * PAGE_SIZE;
}
