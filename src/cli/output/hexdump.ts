/**
 * xxd-style hexdump: "ADDRESS: 4865 6c6c 6f20 ...  Hello ...", 16 bytes a line, bytes grouped in
 * pairs, addresses at least 8 hex digits (wider when the address needs it), ASCII with '.' for
 * non-printables. The last line is padded so the ASCII column stays aligned.
 */
export function hexdump(data: Buffer, baseAddress: bigint): string {
  const last = baseAddress + BigInt(Math.max(0, data.length - 1));
  const width = Math.max(8, last.toString(16).length);
  const lines: string[] = [];
  for (let off = 0; off < data.length; off += 16) {
    const row = data.subarray(off, off + 16);
    lines.push(`${(baseAddress + BigInt(off)).toString(16).padStart(width, '0')}: ${hexColumn(row)}  ${asciiColumn(row)}`);
  }
  return lines.length > 0 ? `${lines.join('\n')}\n` : '';
}

export function hexColumn(row: Buffer): string {
  let s = '';
  for (let i = 0; i < 16; i++) {
    s += i < row.length ? row[i]!.toString(16).padStart(2, '0') : '  ';
    if (i % 2 === 1 && i < 15) s += ' ';
  }
  return s;
}

export function asciiColumn(row: Buffer): string {
  let s = '';
  for (const b of row) s += b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : '.';
  return s;
}

/**
 * A byte diff of two equal-length 16-byte rows as two hexdump lines ("-" for A, "+" for B) with a
 * caret line under the bytes that differ.
 */
export function hexdumpDiffRow(address: bigint, a: Buffer, b: Buffer): string {
  const width = Math.max(8, address.toString(16).length);
  const addr = address.toString(16).padStart(width, '0');
  let marks = '';
  for (let i = 0; i < 16; i++) {
    marks += a[i] !== b[i] ? '^^' : '  ';
    if (i % 2 === 1 && i < 15) marks += ' ';
  }
  return [`- ${addr}: ${hexColumn(a)}  ${asciiColumn(a)}`, `+ ${addr}: ${hexColumn(b)}  ${asciiColumn(b)}`, `  ${' '.repeat(width)}  ${marks.trimEnd()}`].join('\n');
}
