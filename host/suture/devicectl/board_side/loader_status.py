# The loader's status as the host reads it over the REPL when no agent runs: the journal's
# current record, the installed and backup versions, the NVM keys, the identity, the agent's
# transport and every journal record. The same fields as the status protocol's groups.
from loader import api
from loader import journal as _journal


def loader_status():
    ld = api.loader()
    r = ld.journal.current
    inst = ld.installed()
    bk = ld.backup_header()
    nvm = ld.nvm()
    keys = sorted(k.decode() for k in nvm.keys())
    return {
        "state": r.name(),
        "component": r.component,
        "seq": r.seq,
        "version": r.version,
        "boot_count": r.boot_count,
        "flags": r.flags,
        "progress": r.progress,
        "installed_version": inst.version,
        "installed_digest": "".join("%02x" % b for b in inst.digest),
        "backup_version": bk.version if bk else None,
        "nvm_keys": keys,
        "device_id": nvm.get("id.device")[1].decode() if "id.device" in keys else None,
        "link": nvm.get("net.link")[1].decode() if "net.link" in keys else None,
        "journal": [
            [x.seq, _journal.STATE_NAMES[x.state], x.version] for x in ld.journal.records()
        ],
    }
