# Entry point of the simulated board (run by suture.sim in the device's folder):
#   micropython -X heapsize=N run.py CMD [ARGS] [+ CMD [ARGS] ...]
# Commands: provision BUNDLE VERSION | boot (settles a loader trial, as power_on) | app
#           | stage ENVELOPE PAYLOAD [noinstall] | confirm | revert | report | journal
#           | nvm-put KEY HEXVALUE SCHEMA | nvm-del KEY
#           | nvm-fill KEY BYTE COUNT SCHEMA (value = COUNT copies of BYTE)
#           | nvm-keep KEY HEXVALUE SCHEMA (a record kept across a revert)
#           | trust DOCUMENT (apply a trust-store update)
#           | exec SCRIPT [ARGS] (tests: run SCRIPT with board, loader, out, args in scope)
# Output lines the harness parses: "SUTURE-RESULT <json>", "SUTURE-ERROR <name> <message>",
# "SUTURE-OPS <n>". Exit status: 0 ok, 2 a named loader error, 99 power cut, 98 reset.
import json
import sys

from loader import journal as J
from loader.console import FileStream
from loader.errors import LoaderError, PowerCut
from loader.hal import board
from loader.hal.sim import Reset

EXIT_ERROR = 2
EXIT_RESET = 98
EXIT_POWERCUT = 99


def _report(ld):
    r = ld.journal.current
    inst = ld.installed()
    _, digest = ld.app_digest()
    nvm = ld.nvm()
    values = {}
    for k in nvm.keys():
        schema, v = nvm.get(k)
        values[k.decode()] = [schema, v.hex()]
    bk = ld.backup_header()
    return {
        "state": r.name(),
        "component": r.component,
        "seq": r.seq,
        "version": r.version,
        "boot_count": r.boot_count,
        "flags": r.flags,
        "progress": r.progress,
        "installed_version": inst.version,
        "installed_digest": inst.digest.hex(),
        "app_digest": digest.hex(),
        "backup_version": bk.version if bk else None,
        "nvm_bank_version": nvm.bank.version if nvm.bank else None,
        "nvm": values,
    }


def _run(b, ld, cmd, args, out):
    if cmd == "provision":
        b.mount(format_if_blank=True)
        from loader.api import loader

        ld = loader()
        with FileStream(args[0]) as s:
            ld.provision(s, s.size(), int(args[1]))
        return ld
    if ld is None:
        from loader.boot import boot

        if cmd == "boot":
            ld, rec = boot(b)
            if rec.component == J.COMPONENT_LOADER and rec.state == J.TRIAL:
                # as the firmware's power_on: a loader stage0 just installed settles its trial
                from loader.boot import settle_loader

                settle_loader(ld, rec)
                rec = ld.journal.current
            out["boot"] = rec.name()
            return ld
        b.mount()
        from loader.api import loader

        ld = loader()
    if cmd == "boot":
        raise LoaderError("boot must come first")
    if cmd == "app":
        from loader.boot import run_app

        out["app"] = run_app(ld)
    elif cmd == "stage":
        with open(args[0], "rb") as f:
            env = f.read()
        with FileStream(args[1]) as s:
            plan = ld.stage(env, s, install=not (len(args) > 2 and args[2] == "noinstall"))
        out["staged_version"] = plan.seq
    elif cmd == "confirm":
        ld.confirm()
    elif cmd == "revert":
        ld.request_revert()
    elif cmd == "report":
        out["report"] = _report(ld)
    elif cmd == "journal":
        out["journal"] = [[r.seq, r.component, J.STATE_NAMES[r.state], r.boot_count, r.flags,
                           r.progress, r.size, r.version, r.digest.hex()]
                          for r in ld.journal.records()]
    elif cmd == "exec":
        with open(args[0]) as f:
            src = f.read()
        exec(src, {"board": b, "loader": ld, "out": out, "args": args[1:]})
    elif cmd == "nvm-put":
        ld.nvm().put(args[0], bytes.fromhex(args[1]), int(args[2]))
    elif cmd == "nvm-keep":
        ld.nvm().put(args[0], bytes.fromhex(args[1]), int(args[2]), keep=True)
    elif cmd == "nvm-fill":
        ld.nvm().put(args[0], bytes((int(args[1]),)) * int(args[2]), int(args[3]))
    elif cmd == "nvm-del":
        ld.nvm().delete(args[0])
    elif cmd == "trust":
        from loader import trust

        with open(args[0], "rb") as f:
            out["trust"] = list(trust.update(ld, f.read()))
    else:
        raise LoaderError("unknown command %s" % cmd)
    return ld


def main(argv):
    cmds = []
    cur = []
    for a in argv:
        if a == "+":
            cmds.append(cur)
            cur = []
        else:
            cur.append(a)
    cmds.append(cur)
    import gc
    import os

    threshold = os.getenv("SUTURE_GC_THRESHOLD")
    if threshold:
        gc.threshold(int(threshold))
    b = board()
    out = {}
    ld = None
    code = 0
    try:
        for c in cmds:
            ld = _run(b, ld, c[0], c[1:], out)
    except PowerCut:
        print("SUTURE-POWERCUT")
        code = EXIT_POWERCUT
    except Reset:
        code = EXIT_RESET
    except LoaderError as e:
        print("SUTURE-ERROR %s %s" % (type(e).__name__, e))
        code = EXIT_ERROR
    from loader.hal.simflash import supply

    out["heap_peak"] = supply.heap_peak
    if code != EXIT_POWERCUT:
        print("SUTURE-RESULT " + json.dumps(out))
    print("SUTURE-OPS %d" % b.ops())
    sys.exit(code)
