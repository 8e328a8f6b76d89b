#!/usr/bin/env python3
"""Open N LDAP connections, bind each as a user, then keep them idle.

    idle-holder.py --port P --count N [--host 127.0.0.1] [--entries E]
                   [--base dc=example,dc=com] [--parallel 200]

Connection i binds as uid=user{1 + i % E},ou=people,BASE with pass{...}
(the data of `ldbench gen`), so the server applies its idle timeout for
bound connections, not the shorter anonymous one. When all are bound it
prints one line `ready OK FAILED SECONDS` on stdout and holds them until
stdin reaches EOF (or SIGTERM), then closes them and prints `closed K`
where K is the number the server had closed in the meantime (a server
that drops idle connections shows up there). Standard library only.
"""
import argparse
import asyncio
import signal
import sys
import time


def ber_len(n):
    if n < 0x80:
        return bytes([n])
    b = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(b)]) + b


def tlv(tag, body):
    return bytes([tag]) + ber_len(len(body)) + body


def ber_int(v):
    return tlv(0x02, v.to_bytes(max(1, (v.bit_length() + 8) // 8), "big", signed=True))


def bind_request(msgid, dn, pw):
    op = tlv(0x60, ber_int(3) + tlv(0x04, dn.encode()) + tlv(0x80, pw.encode()))
    return tlv(0x30, ber_int(msgid) + op)


async def read_message(reader):
    head = await reader.readexactly(2)
    n = head[1]
    if n & 0x80:
        k = n & 0x7F
        n = int.from_bytes(await reader.readexactly(k), "big")
    return await reader.readexactly(n)


def bind_result_code(body):
    """resultCode of a BindResponse: messageID INTEGER, then [APPLICATION 1]."""
    i = 0
    if body[i] != 0x02:
        raise ValueError("no messageID")
    i += 2 + body[i + 1]
    if body[i] != 0x61:
        raise ValueError(f"not a BindResponse (tag {body[i]:#x})")
    i += 1
    n = body[i]
    i += 1 + ((n & 0x7F) if n & 0x80 else 0)
    if body[i] != 0x0A:
        raise ValueError("no resultCode")
    return int.from_bytes(body[i + 2 : i + 2 + body[i + 1]], "big")


async def open_one(args, i, sem):
    user = 1 + i % args.entries
    dn = f"uid=user{user},ou=people,{args.base}"
    async with sem:
        reader, writer = await asyncio.open_connection(args.host, args.port)
        writer.write(bind_request(1, dn, f"pass{user}"))
        await writer.drain()
        code = bind_result_code(await read_message(reader))
        if code != 0:
            writer.close()
            raise RuntimeError(f"bind of {dn}: resultCode {code}")
        return reader, writer


async def main():
    p = argparse.ArgumentParser()
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--count", type=int, required=True)
    p.add_argument("--entries", type=int, default=100000)
    p.add_argument("--base", default="dc=example,dc=com")
    p.add_argument("--parallel", type=int, default=200)
    args = p.parse_args()

    t0 = time.monotonic()
    sem = asyncio.Semaphore(args.parallel)
    results = await asyncio.gather(
        *(open_one(args, i, sem) for i in range(args.count)), return_exceptions=True
    )
    conns = [r for r in results if not isinstance(r, BaseException)]
    errors = [r for r in results if isinstance(r, BaseException)]
    if errors:
        print(f"first error: {errors[0]!r}", file=sys.stderr)
    print(f"ready {len(conns)} {len(errors)} {time.monotonic() - t0:.2f}", flush=True)

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_reader(sys.stdin.fileno(), lambda: (sys.stdin.buffer.read1(4096) or stop.set()) and None)
    await stop.wait()
    # A connection the server closed reads EOF at once; a live idle one does not.
    closed = 0
    for reader, _ in conns:
        if reader.at_eof() or reader._buffer:  # noqa: SLF001 (no public peek)
            closed += 1
    for _, writer in conns:
        writer.close()
    print(f"closed {closed}", flush=True)


if __name__ == "__main__":
    asyncio.run(main())
