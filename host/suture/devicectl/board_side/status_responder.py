# A reference responder of the status protocol (docs/hil.md): the loop an agent runs between its
# steps, polling stdin without blocking, answering each request line with the groups asked for
# and printing its own log meanwhile. The update agent's own is device/agent/status.py. The host
# gives the groups' fields (suture.devicectl.status_protocol.GROUPS), so they are defined once.
import json
import select
import sys

REQUEST = b"\x1eSUTURE-STATUS? "
MAX_LINE = 4096


def status_answer(line, read_status, groups):
    try:
        req = json.loads(line[len(REQUEST) :])
        rid = req["id"]
        asked = req.get("get", ())
    except (ValueError, KeyError, TypeError, IndexError, AttributeError):
        return {"id": 0, "error": "malformed request"}
    if not isinstance(rid, int):
        return {"id": 0, "error": "malformed request"}
    st = read_status()
    out = {"id": rid}
    for g in asked:
        if g == "agent":
            out["agent"] = {"phase": "idle"}
            continue
        for k in groups.get(g, ()):
            out[k] = st[k]
    return out


def serve_status(count, read_status, groups):
    """Answer `count` requests from the status dict `read_status()` returns, each group of
    `groups` (name -> field names) with its fields, then return; the end of input ends it
    early. Returns how many were answered."""
    poll = select.poll()
    poll.register(sys.stdin, select.POLLIN)
    inp = sys.stdin.buffer
    line = bytearray()
    served = 0
    tick = 0
    while served < count:
        tick += 1
        if tick % 5 == 0:
            print("agent: tick", tick)
        if not poll.poll(20):
            continue
        c = inp.read(1)
        if not c:
            break
        if c != b"\n":
            if len(line) < MAX_LINE:
                line.extend(c)
            continue
        if bytes(line[: len(REQUEST)]) == REQUEST:
            answer = status_answer(bytes(line), read_status, groups)
            sys.stdout.write("\x1eSUTURE-STATUS " + json.dumps(answer) + "\n")
            served += 1
        line = bytearray()
    return {"served": served}
