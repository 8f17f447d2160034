#!/usr/bin/env python3
"""An order's way through PostgreSQL, message by message (docs/benchmarks.md, "An order's way, message by message").

Reads a loopback capture of a `postbox bench system` run and the `ss -tnpH` snapshot that names each connection's
process, follows every order from the checkout statement to orders' status change, and prints the median and p90 of
each step: from a statement's Bind to the ReadyForQuery that ends it (the server's share, commit included), or from
an answer or a notification to the next message a service sends (the service's share, wake-ups included).

Orders are followed in time order, each step the first matching message after the one before, so run at a rate at
which orders do not overlap (20/s: an order takes about 12 ms, the next comes 50 ms later).

    swift run -c release postbox bench system --rate 20 --duration 15 --search-seconds 0 &
    # once it prints "firing", and a few seconds later, past the warm-up (its first 2 s):
    sleep 4; ss -tnpH > /tmp/connections.txt
    timeout 4 tcpdump -i lo -s 0 -w /tmp/flow.pcap
    python3 docs/tools/message_timeline.py /tmp/flow.pcap /tmp/connections.txt

Needs `pip install dpkt`. STEPS names the statements of the current code; change it with them.
"""
import collections
import re
import statistics
import struct
import sys

import dpkt

# (process, message, statement or topic): a Bind of that prepared statement, or a notification of that topic
# reaching that process's listener. ("answer",) is the ReadyForQuery ending the statement before it.
STEPS = [
    ("orders", "B", "Orders.OrdersStatements.PlaceOrder"), ("answer",),
    ("orders", "B", "postbox_bus_notify_v1"),
    ("inventory", "A", "order.placed"),
    ("inventory", "B", "postbox_bus_claim_v2"), ("answer",),
    ("inventory", "B", "Inventory.InventoryStatements.ReserveAndAcknowledge"), ("answer",),
    ("inventory", "B", "postbox_bus_notify_v1"),
    ("payments", "A", "stock.reserved"),
    ("payments", "B", "postbox_bus_claim_v2"), ("answer",),
    ("payments", "B", "Payments.PaymentsStatements.ChargeState"), ("answer",),
    ("payment-gateway", "B", "PaymentGateway.LedgerStatements.InsertCharge"), ("answer",),
    ("payments", "B", "Payments.PaymentsStatements.InsertPaymentPublishAndAcknowledge"), ("answer",),
    ("payments", "B", "postbox_bus_notify_v1"),
    ("orders", "A", "payment.captured"),
    ("orders", "B", "postbox_bus_claim_v2"), ("answer",),
    ("orders", "B", "Orders.OrdersStatements.TransitionOrder"),
]


def processes_by_port(snapshot):
    """Client port → process name, and PostgreSQL's port (the one most connections go to)."""
    peers = collections.Counter()
    rows = []
    for line in open(snapshot):
        fields = line.split()
        named = re.search(r'\(\("([^"]+)"', line)
        if len(fields) < 5 or not named:
            continue
        local, peer = fields[3].rsplit(":", 1)[1], fields[4].rsplit(":", 1)[1]
        rows.append((int(local), int(peer), named.group(1)))
        if named.group(1) == "postgres":
            peers[int(local)] += 1
    server = peers.most_common(1)[0][0]
    return {local: name for local, peer, name in rows if peer == server}, server


def messages(capture, names, server):
    """(time, connection, process, kind, name): Binds sent, notifications and ReadyForQuery received."""
    streams = collections.defaultdict(bytes)
    found = []
    for time, frame in dpkt.pcap.Reader(open(capture, "rb")):
        ip = dpkt.ethernet.Ethernet(frame).data
        if not isinstance(ip, dpkt.ip.IP) or not isinstance(ip.data, dpkt.tcp.TCP) or not ip.data.data:
            continue
        tcp = ip.data
        if server not in (tcp.sport, tcp.dport):
            continue
        client = tcp.sport if tcp.dport == server else tcp.dport
        to_server = tcp.dport == server
        key = (client, to_server)
        data = streams[key] + bytes(tcp.data)
        offset = 0
        while len(data) - offset >= 5:
            kind = chr(data[offset])
            length = struct.unpack(">I", data[offset + 1:offset + 5])[0]
            if len(data) - offset < 1 + length:
                break
            body = data[offset + 5:offset + 1 + length]
            offset += 1 + length
            process = names.get(client, "?")
            if to_server and kind == "B":
                portal_end = body.index(b"\0")
                name = body[portal_end + 1:body.index(b"\0", portal_end + 1)].decode(errors="replace")
                found.append((time, client, process, "B", name))
            elif not to_server and kind == "A":
                found.append((time, client, process, "A", body[4:].split(b"\0")[1].decode(errors="replace")))
            elif not to_server and kind == "Z":
                found.append((time, client, process, "Z", ""))
        streams[key] = data[offset:]
    return found


def chains(found):
    """Each order's step times, in STEPS' order; orders with a missing step are left out."""
    result = []
    for start, first in enumerate(found):
        if (first[2], first[3], first[4]) != STEPS[0]:
            continue
        times, index, connection = [first[0]], start, first[1]
        for step in STEPS[1:]:
            if step == ("answer",):
                match = lambda m: m[1] == connection and m[3] == "Z"
            else:
                match = lambda m, step=step: (m[2], m[3], m[4]) == step
            index = next((i for i in range(index + 1, len(found)) if match(found[i])), None)
            if index is None or found[index][0] - times[0] > 0.2:
                break
            if step != ("answer",):
                connection = found[index][1]
            times.append(found[index][0])
        else:
            result.append(times)
    return result


def main():
    names, server = processes_by_port(sys.argv[2])
    followed = chains(messages(sys.argv[1], names, server))
    print(f"{len(followed)} orders followed; milliseconds, median and p90")
    for number, step in enumerate(STEPS[1:], start=1):
        gaps = sorted((times[number] - times[number - 1]) * 1000 for times in followed)
        label = "its answer" if step == ("answer",) else f"{step[0]}: {'notified of' if step[1] == 'A' else 'sends'} {step[2]}"
        print(f"{statistics.median(gaps):6.2f} {gaps[int(len(gaps) * 0.9)]:6.2f}  {label}")
    totals = [(times[-1] - times[0]) * 1000 for times in followed]
    print(f"{statistics.median(totals):6.2f}        checkout sent → status change sent")


if __name__ == "__main__":
    main()
