/**
 * A minimal writer for the cpio "newc" format, the only archive format the Linux kernel unpacks as
 * an initramfs. Written here so building the test guest needs no `cpio` binary and no root: device
 * nodes such as /dev/console are just headers in the archive.
 */

export type CpioEntry =
  | { kind: 'dir'; path: string; mode?: number }
  | { kind: 'file'; path: string; data: Buffer; mode?: number }
  | { kind: 'symlink'; path: string; target: string }
  | { kind: 'chardev'; path: string; major: number; minor: number; mode?: number };

const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;
const S_IFCHR = 0o020000;
const TRAILER = 'TRAILER!!!';
const HEADER_BYTES = 110;

/** newc pads the header+name and the file data each to a multiple of 4 bytes. */
function pad4(length: number): Buffer {
  return Buffer.alloc((4 - (length % 4)) % 4);
}

function hex8(value: number): string {
  if (!Number.isInteger(value) || value < 0 || value > 0xffffffff) throw new Error(`cpio field out of range: ${value}`);
  return value.toString(16).padStart(8, '0');
}

function record(ino: number, mode: number, name: string, data: Buffer, rdev: { major: number; minor: number } = { major: 0, minor: 0 }): Buffer[] {
  const nameBytes = Buffer.from(`${name}\0`, 'utf8');
  const fields = [
    ino, // c_ino: distinct per entry, so the kernel never links two entries as hard links
    mode,
    0, // uid root
    0, // gid root
    (mode & S_IFDIR) === S_IFDIR ? 2 : 1, // nlink
    0, // mtime: fixed, so the same inputs give the same archive
    data.length,
    0, // devmajor of the file system the entry came from (none)
    0, // devminor
    rdev.major,
    rdev.minor,
    nameBytes.length,
    0, // check: only used by the "crc" variant
  ];
  const header = Buffer.from(`070701${fields.map(hex8).join('')}`, 'ascii');
  if (header.length !== HEADER_BYTES) throw new Error('cpio header length mismatch');
  return [header, nameBytes, pad4(HEADER_BYTES + nameBytes.length), data, pad4(data.length)];
}

/** Entry paths are relative to the archive root ("bin/sh", not "/bin/sh"). */
function archiveName(path: string): string {
  const name = path.replace(/^\/+/, '');
  if (name === '' || name.split('/').some((part) => part === '..' || part === '')) throw new Error(`bad cpio path: ${JSON.stringify(path)}`);
  return name;
}

/** The whole archive (uncompressed), entries in the given order, ending with the TRAILER!!! record. */
export function writeCpioNewc(entries: CpioEntry[]): Buffer {
  const parts: Buffer[] = [];
  entries.forEach((entry, i) => {
    const name = archiveName(entry.path);
    const ino = i + 1;
    switch (entry.kind) {
      case 'dir':
        parts.push(...record(ino, S_IFDIR | (entry.mode ?? 0o755), name, Buffer.alloc(0)));
        break;
      case 'file':
        parts.push(...record(ino, S_IFREG | (entry.mode ?? 0o644), name, entry.data));
        break;
      case 'symlink':
        parts.push(...record(ino, S_IFLNK | 0o777, name, Buffer.from(entry.target, 'utf8')));
        break;
      case 'chardev':
        parts.push(...record(ino, S_IFCHR | (entry.mode ?? 0o600), name, Buffer.alloc(0), entry));
        break;
    }
  });
  parts.push(...record(0, 0, TRAILER, Buffer.alloc(0)));
  return Buffer.concat(parts);
}
