"""An aioice (the ICE layer of aiortc, PyPI) peer for in8-ice interop tests.

Protocol on stdin / stdout, one line each:
  out: CREDS <ufrag> <pwd>, then CAND <ip> <port> <priority> <type> per candidate, then END
  in:  CREDS <ufrag> <pwd>, then CAND <ip> <port> <priority> [<type>] ..., then END
  out: CONNECTED <local ip:port> <remote ip:port>  or  FAILED <reason>
  then it keeps the connection (answering consent checks) for HOLD seconds; with --echo it
  first waits for one datagram on the connection, prints ECHO <n> and sends it back.
  Finally DONE.

Usage: python aioice_peer.py controlling|controlled [hold_seconds]
                             [--host IP] [--stun IP:PORT] [--echo]
Without --host, host candidates are restricted to 127.0.0.1 (tests talk over loopback);
in the NAT lab --host is the lab host's address and --stun the lab's coturn.
"""

import asyncio
import sys

import aioice
import aioice.ice


def option(name):
    if name in sys.argv:
        return sys.argv[sys.argv.index(name) + 1]
    return None


HOST = option("--host") or "127.0.0.1"
aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: [HOST]


async def main():
    controlling = sys.argv[1] == "controlling"
    hold = float(sys.argv[2]) if len(sys.argv) > 2 and sys.argv[2][0].isdigit() else 3.0
    stun = option("--stun")
    stun_server = (stun.rsplit(":", 1)[0], int(stun.rsplit(":", 1)[1])) if stun else None
    conn = aioice.Connection(
        ice_controlling=controlling, components=1, use_ipv6=False, stun_server=stun_server
    )
    await conn.gather_candidates()
    print(f"CREDS {conn.local_username} {conn.local_password}", flush=True)
    for c in conn.local_candidates:
        print(f"CAND {c.host} {c.port} {c.priority} {c.type}", flush=True)
    print("END", flush=True)

    loop = asyncio.get_running_loop()
    readline = lambda: loop.run_in_executor(None, sys.stdin.readline)
    line = (await readline()).split()
    conn.remote_username, conn.remote_password = line[1], line[2]
    i = 0
    while True:
        line = (await readline()).split()
        if not line or line[0] == "END":
            break
        i += 1
        cand = aioice.Candidate(
            foundation=f"in8{i}",
            component=1,
            transport="udp",
            priority=int(line[3]),
            host=line[1],
            port=int(line[2]),
            type=line[4] if len(line) > 4 else "host",
        )
        await conn.add_remote_candidate(cand)
    await conn.add_remote_candidate(None)
    try:
        await asyncio.wait_for(conn.connect(), 20)
    except Exception as e:  # report, do not crash: the Rust test asserts on it
        print(f"FAILED {type(e).__name__}:{e}".replace("\n", " "), flush=True)
        return
    pair = conn._nominated.get(1)
    local = f"{pair.local_addr[0]}:{pair.local_addr[1]}" if pair else "?"
    remote = f"{pair.remote_addr[0]}:{pair.remote_addr[1]}" if pair else "?"
    print(f"CONNECTED {local} {remote}", flush=True)
    if "--echo" in sys.argv:
        try:
            data = await asyncio.wait_for(conn.recv(), hold)
            print(f"ECHO {len(data)}", flush=True)
            await conn.send(data)
        except Exception as e:
            print(f"NOECHO {type(e).__name__}:{e}".replace("\n", " "), flush=True)
    await asyncio.sleep(hold)
    await conn.close()
    print("DONE", flush=True)


asyncio.run(main())
