import { open } from 'node:fs/promises';

/** ELF's program header type of the interpreter's path (System V ABI, "Program Header"). */
const PT_INTERP = 3;
/** Far more than any interpreter path; a larger PT_INTERP is not one. */
const MAX_INTERP = 4096;

/**
 * The ELF interpreter a binary asks the kernel for (its PT_INTERP, e.g.
 * `/lib/ld-linux-aarch64.so.1`), or undefined for a statically linked binary or a file that
 * is not ELF (docs/cgo.md#interpreter).
 */
export async function elfInterpreter(file: string): Promise<string | undefined> {
  const f = await open(file, 'r');
  try {
    const read = async (position: number, length: number): Promise<Buffer> => {
      const b = Buffer.alloc(length);
      const { bytesRead } = await f.read(b, 0, length, position);
      if (bytesRead !== length) throw new Error(`${file}: ELF header or program header table is cut short`);
      return b;
    };
    const ident = Buffer.alloc(64);
    const { bytesRead } = await f.read(ident, 0, 64, 0);
    if (bytesRead < 52 || ident.readUInt32BE(0) !== 0x7f454c46) return undefined; // "\x7fELF"
    const is64 = ident[4] === 2;
    const little = ident[5] === 1;
    const u16 = (b: Buffer, o: number) => (little ? b.readUInt16LE(o) : b.readUInt16BE(o));
    const u32 = (b: Buffer, o: number) => (little ? b.readUInt32LE(o) : b.readUInt32BE(o));
    const u64 = (b: Buffer, o: number) => Number(little ? b.readBigUInt64LE(o) : b.readBigUInt64BE(o));
    // e_phoff, e_phentsize, e_phnum in the 32- and 64-bit file headers.
    const phoff = is64 ? u64(ident, 32) : u32(ident, 28);
    const phentsize = u16(ident, is64 ? 54 : 42);
    const phnum = u16(ident, is64 ? 56 : 44);
    if (phnum === 0) return undefined;
    if (phentsize < (is64 ? 56 : 32)) throw new Error(`${file}: ELF program headers of ${phentsize} bytes`);
    const table = await read(phoff, phentsize * phnum);
    for (let i = 0; i < phnum; i++) {
      const h = table.subarray(i * phentsize, (i + 1) * phentsize);
      if (u32(h, 0) !== PT_INTERP) continue;
      // p_offset and p_filesz
      const offset = is64 ? u64(h, 8) : u32(h, 4);
      const size = is64 ? u64(h, 32) : u32(h, 16);
      if (size === 0 || size > MAX_INTERP) throw new Error(`${file}: ELF interpreter path of ${size} bytes`);
      const path = await read(offset, size);
      const nul = path.indexOf(0);
      return path.subarray(0, nul < 0 ? path.length : nul).toString('utf8');
    }
    return undefined;
  } finally {
    await f.close();
  }
}
