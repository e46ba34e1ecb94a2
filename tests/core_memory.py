"""What a process held in memory, read from the core file gdb wrote of it (gcore), for the tests
that search caback's memory for secrets once it is done with them (test-secrets-memory.sh,
test-custody.sh, test-share-open.sh; see core_at_breakpoint in tests/lib.sh).

Only the process's memory counts: the core's PT_LOAD segments. Its notes are left out, because gdb
writes there the command line it started the program with, whatever the program did to its own
argv since. A copy of a secret that was freed without wiping loses its first 16 bytes to malloc's
free-list pointers, so the searches also count a secret's tail (see tail_of).
"""
import struct

FORMS = ("utf-8", "utf-16-be", "utf-16-le")


def process_memory(path):
    """The PT_LOAD segments of the x86-64 ELF core at PATH, one after the other, each ended by a
    NUL so that no match spans two segments."""
    data = open(path, "rb").read()
    phoff, = struct.unpack_from("<Q", data, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    memory = bytearray()
    for i in range(phnum):
        p_type, _, p_offset, _, _, p_filesz = struct.unpack_from("<IIQQQQ", data,
                                                                 phoff + i * phentsize)
        if p_type == 1:
            memory += data[p_offset:p_offset + p_filesz] + b"\0"
    return memory


def tail_of(secret, length=12):
    """The part of SECRET (text or bytes) that a freed, unwiped copy still holds."""
    return secret[-length:]
