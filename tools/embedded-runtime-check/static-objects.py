#!/usr/bin/env python3
"""The guard for issue #25's second Embedded defect: same-named constant objects with different contents.

Swift's ObjectOutliner turns a constant array literal into a statically initialized object named after the function
that holds it, `<function>Tv_r`, `<function>Tv0_r`, `<function>Tv1_r`… numbered in the order the pass meets them.
Embedded Swift compiles a library's functions again in every module that uses them, and a module built as several
objects (wmo with -num-threads, as SwiftPM builds) emits these objects as weak hidden symbols. Two modules may
number the literals of one function differently; the linker keeps one definition per name, so a function can read
another literal's bytes (the product answered a valid SOCKS greeting 05 01 00 with 05 FF, and SOCKS4 with 05 00).

Reads the ELF64 objects given (files or folders, searched for *.o) and exits 1 when one such weak symbol has
different bytes in two objects.        static-objects.py OBJECT-OR-FOLDER...
"""
import os
import re
import struct
import sys

OUTLINED = re.compile(rb"Tv\d*_r$")
STB_WEAK, SHT_SYMTAB, SHT_NOBITS = 2, 2, 8


def weak_objects(path):
    """(name, bytes) of every weak outlined constant object defined in one ELF64 little-endian object."""
    data = open(path, "rb").read()
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        return []
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum = struct.unpack_from("<HH", data, 0x3A)
    sections = [struct.unpack_from("<IIQQQQIIQQ", data, shoff + i * shentsize) for i in range(shnum)]
    found = []
    for sh in sections:
        if sh[1] != SHT_SYMTAB:
            continue
        strtab = sections[sh[6]]
        for offset in range(sh[4], sh[4] + sh[5], sh[9]):
            name_at, info, _, shndx, value, size = struct.unpack_from("<IBBHQQ", data, offset)
            if info >> 4 != STB_WEAK or shndx == 0 or shndx >= len(sections):
                continue
            start = strtab[4] + name_at
            name = data[start:data.index(b"\0", start)]
            if not OUTLINED.search(name):
                continue
            target = sections[shndx]
            body = b"" if target[1] == SHT_NOBITS else data[target[4] + value:target[4] + value + size]
            found.append((name.decode(errors="replace"), body))
    return found


def objects(arguments):
    for argument in arguments:
        if os.path.isdir(argument):
            for folder, _, files in sorted(os.walk(argument)):
                yield from (os.path.join(folder, f) for f in sorted(files) if f.endswith(".o"))
        else:
            yield argument


def main(arguments):
    seen = {}
    for path in objects(arguments):
        for name, body in weak_objects(path):
            seen.setdefault(name, {}).setdefault(body, []).append(path)
    clashes = {name: bodies for name, bodies in seen.items() if len(bodies) > 1}
    for name, bodies in sorted(clashes.items()):
        print(f"static-objects: {name} has {len(bodies)} different contents:")
        for body, paths in bodies.items():
            where = ", ".join(os.path.basename(p) for p in paths)
            print(f"    {body[-16:].hex(' ')} (last bytes)  in {where}")
    print(f"static-objects: {len(seen)} weak outlined constants, {len(clashes)} with different contents in two objects")
    return 1 if clashes else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
