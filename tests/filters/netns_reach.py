# -*- coding: utf-8 -*-
# Copyright: Contributors to the fleetguard.webshield project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Send one TCP connection and one UDP datagram from each given source to a destination; print JSON.

Meant to run inside a private network namespace (loopback only) after a ban action's commands. Usage:

    netns_reach.py DEST SOURCE [SOURCE ...]

For each source and protocol the outcome is "delivered" (the listener got it), "refused" (an RST or ICMP
unreachable came back: REJECT) or "silent" (nothing came back within the timeout: DROP).
"""

import json
import socket
import sys

TIMEOUT = 1.0
# A REJECT answer that reaches a connecting socket while the connect call holds it is kept as a soft error
# only, and the kernel sends the SYN again after 1 s: wait past that second answer.
TCP_TIMEOUT = 1.5


def _family(address):
    return socket.AF_INET6 if ":" in address else socket.AF_INET


def tcp(source, dest):
    family = _family(dest)
    with socket.socket(family, socket.SOCK_STREAM) as listener, socket.socket(family, socket.SOCK_STREAM) as client:
        listener.bind((dest, 0))
        listener.listen(1)
        client.bind((source, 0))
        client.settimeout(TCP_TIMEOUT)
        try:
            client.connect(listener.getsockname()[:2])
        except ConnectionRefusedError:
            return "refused"
        except (socket.timeout, OSError):
            return "silent"
        return "delivered"


def udp(source, dest):
    family = _family(dest)
    with socket.socket(family, socket.SOCK_DGRAM) as receiver, socket.socket(family, socket.SOCK_DGRAM) as sender:
        receiver.bind((dest, 0))
        receiver.settimeout(TIMEOUT)
        sender.bind((source, 0))
        sender.connect(receiver.getsockname()[:2])  # connected: an ICMP unreachable shows up on recv
        sender.settimeout(TIMEOUT / 2)
        sender.send(b"webshield")
        try:
            receiver.recv(64)
            return "delivered"
        except socket.timeout:
            pass
        try:
            sender.recv(64)
        except ConnectionRefusedError:
            return "refused"
        except socket.timeout:
            pass
        return "silent"


def main(dest, sources):
    out = {source: {"tcp": tcp(source, dest), "udp": udp(source, dest)} for source in sources}
    json.dump(out, sys.stdout, sort_keys=True)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
