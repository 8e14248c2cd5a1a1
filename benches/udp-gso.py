#!/usr/bin/env python3
"""A light UDP load for the PPPoE data-path benches: 64-byte datagrams sent with UDP
segmentation offload (`UDP_SEGMENT`, as QUIC stacks send) and received with UDP GRO, so that
the sender and the receiver cost little per datagram and the programs between them, not the
load generator, set the rate (iperf3 makes one system call per datagram and takes most of a
core on a small machine).

    udp-gso.py send ADDRESS SECONDS RATE [PER_SEND]   # RATE datagrams/s (0: as fast as it can)
    udp-gso.py recv ADDRESS SECONDS                    # ends SECONDS after the first datagram,
                                                       # or 1 s after the last
    udp-gso.py send-many SECONDS RATE NETNS:ADDRESS... # RATE in all, the targets in turn
    udp-gso.py recv-many SECONDS NETNS:ADDRESS...      # one socket per namespace and address

The -many forms open each socket inside the named network namespace (/run/netns/NETNS, by
setns(2); a socket stays in the namespace it was made in), so one process sends to or receives
from many PPPoE sessions, each in a namespace of its own.

Both print one line: how many datagrams and at what rate. Bounded: the sender stops after
SECONDS, the receiver after SECONDS of traffic or 1 s of silence (or 30 s with none at all).
Port 9000; the size of each datagram is 64 bytes.
"""
import ctypes
import os
import select
import socket
import sys
import time

UDP_SEGMENT, UDP_GRO = 103, 104  # linux/udp.h
SIZE, PORT = 64, 9000


CLONE_NEWNET = 0x40000000
LIBC = ctypes.CDLL(None, use_errno=True)


def in_netns(name, make):
    """Calls make() inside network namespace `name` (None: this one) and comes back."""
    if name is None:
        return make()
    home = os.open("/proc/self/ns/net", os.O_RDONLY)
    target = os.open(f"/run/netns/{name}", os.O_RDONLY)
    try:
        if LIBC.setns(target, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"setns {name}")
        try:
            return make()
        finally:
            if LIBC.setns(home, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns back")
    finally:
        os.close(target)
        os.close(home)


def sender(address):
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_UDP, UDP_SEGMENT, SIZE)
    sock.connect((address, PORT))
    return sock


def receiver(address):
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    sock.setsockopt(socket.SOL_UDP, UDP_GRO, 1)
    sock.bind((address, PORT))
    sock.setblocking(False)
    return sock


def targets(args):
    """NETNS:ADDRESS arguments as (namespace, address) pairs."""
    return [tuple(arg.rsplit(":", 1)) for arg in args]


def send(address, seconds, rate, per_send):
    send_many(seconds, rate, per_send, [sender(address)])


def send_many(seconds, rate, per_send, socks):
    payload = bytes(SIZE * per_send)
    start = time.monotonic()
    end, sent, refused, turn = start + seconds, 0, 0, 0
    while True:
        now = time.monotonic()
        if now >= end:
            break
        if rate:
            ahead = sent / rate - (now - start)
            if ahead > 0:
                time.sleep(ahead)
                continue
        for _ in range(10):
            sock = socks[turn % len(socks)]
            turn += 1
            try:
                sock.send(payload)
                sent += per_send
            except OSError:  # ENOBUFS and the like: the datagrams are not counted as sent
                refused += 1
    print(f"sent {sent} datagrams in {seconds:g} s: {sent / seconds:.0f}/s ({refused} sends refused)")


def recv_many(seconds, socks):
    poll = select.epoll()
    for sock in socks:
        poll.register(sock.fileno(), select.EPOLLIN)
    by_fd = {sock.fileno(): sock for sock in socks}
    got, first, last, waited = 0, None, None, 0
    while True:
        ready = poll.poll(1.0)
        if not ready:
            waited += 1
            if first is not None or waited >= 30:
                break
            continue
        for fd, _ in ready:
            while True:
                try:
                    data = by_fd[fd].recv(65536)
                except BlockingIOError:
                    break
                got += len(data) // SIZE
        last = time.monotonic()
        if first is None:
            first = last
        if last - first >= seconds:
            break
    span = (last - first) if first is not None and last > first else 1.0
    print(f"received {got} datagrams in {span:.2f} s: {got / span:.0f}/s")


if __name__ == "__main__":
    mode, address = sys.argv[1], sys.argv[2]
    seconds = float(sys.argv[3]) if mode in ("send", "recv") else 0
    if mode == "send":
        rate = float(sys.argv[4])
        per_send = int(sys.argv[5]) if len(sys.argv) > 5 else 64
        send(address, seconds, rate, per_send)
    elif mode == "recv":
        recv_many(seconds, [receiver(address)])
    elif mode == "send-many":
        # send-many SECONDS RATE TARGET...: `address` is SECONDS here.
        seconds, rate = float(sys.argv[2]), float(sys.argv[3])
        socks = [in_netns(ns, lambda a=a: sender(a)) for ns, a in targets(sys.argv[4:])]
        send_many(seconds, rate, 64, socks)
    elif mode == "recv-many":
        seconds = float(sys.argv[2])
        socks = [in_netns(ns, lambda a=a: receiver(a)) for ns, a in targets(sys.argv[3:])]
        recv_many(seconds, socks)
