# The loader's decisions: what to do at boot for each journal state (install, trial, revert),
# and the requests the agent or the application make (stage, confirm, revert; staging itself is
# loader/staging.py). Every state change is appended to the journal before the action it
# announces, and every action is idempotent, so after a power cut recover() simply does the
# current step again.
import hashlib
import os
import struct
from binascii import crc32

from micropython import const

from loader import bundle, installed
from loader import journal as J
from loader.errors import (
    BackupError,
    BundleError,
    DigestError,
    InterruptedStagingError,
    LoaderError,
    MigrationError,
    NoSpaceError,
    RollbackError,
    SizeError,
    StateError,
)
from loader.flash import PageWriter, RegionReader
from loader.journal import Journal, Record
from loader.nvm import Nvm

_BUF = const(4096)  # one sector: the streaming buffer of install, backup and verify
_ENOSPC = const(28)
BACKUP_DATA = const(256)  # the backup's bundle starts here; its header sits at offset 0
_BK_MAGIC = b"SUBK"
_BK_FMT = "<4sII32s"
MIGRATIONS = "nvm_migrations"
_MIGRATION_FILES = ("nvm_migrations.py", "nvm_migrations.mpy", "nvm_migrations")
LOADER_SEQ = "loader.seq"  # kept NVM record: the sequence number of the confirmed loader release
# Kept NVM record: the digest of an application tree a developer copied in place of the signed
# one (`suture board deploy`). The loader lets exactly that tree run; any other change, and the
# next signed install, restore the rule that /app is the installed record's bundle.
DEV_TREE = "dev.tree"


class BackupHeader:
    def __init__(self, version, size, digest):
        self.version = version
        self.size = size
        self.digest = digest


class _TeeSink:
    def __init__(self, writer, hasher):
        self.w = writer
        self.h = hasher

    def write(self, data):
        self.h.update(data)
        self.w.write(data)


class _CountSink:
    def __init__(self, hasher):
        self.h = hasher
        self.n = 0

    def write(self, data):
        self.h.update(data)
        self.n += len(data)


class Loader:
    def __init__(self, board):
        self.board = board
        self.journal = Journal(board.region("journal"))
        self.staging = board.region("staging")
        self.backup = board.region("backup")
        self.nvm_region = board.region("nvm")
        root = board.mount_point
        self.app_dir = root + "/app"
        self.installed_path = root + "/.installed"
        self.buf = bytearray(_BUF)
        self._nvm = None

    # ---- state -------------------------------------------------------------------------
    def installed(self):
        return installed.read(self.installed_path)

    def nvm(self):
        """The NVM store as the running application sees it: one instance for the boot, shared
        by all who ask (the agent, the application, the trust store), so that no two instances
        append to the same bank. The install and the revert, which write the banks with their
        own, drop it."""
        r = self.journal.current
        trial = r.component == J.COMPONENT_APP and r.state == J.TRIAL
        if self._nvm is None:
            self._nvm = Nvm(self.nvm_region, self.installed().version, trial)
        self._nvm.trial = trial
        return self._nvm

    def app_digest(self):
        h = hashlib.sha256()
        n = bundle.serialize(self.app_dir, bundle.HashSink(h), self.buf)
        return n, h.digest()

    def backup_header(self):
        b = bytearray(48)
        self.backup.read(0, b)
        if struct.unpack_from("<I", b, 44)[0] != crc32(memoryview(b)[:44]):
            return None
        magic, version, size, digest = struct.unpack_from(_BK_FMT, b, 0)
        if magic != _BK_MAGIC or size > self.backup.size - BACKUP_DATA:
            return None
        return BackupHeader(version, size, bytes(digest))

    # ---- boot ----------------------------------------------------------------------------
    def recover(self):
        """Finish or undo whatever the journal says was in flight; count a trial boot; then
        make sure the application about to run is the installed record's signed bundle
        (_check_app). Returns the current record once the state is one the application may
        run in."""
        may_revert = True
        while True:
            r = self._settle()
            if self._check_app(r, may_revert):
                return r
            may_revert = False  # one revert per boot: after it, restore or empty /app

    def _settle(self):
        j = self.journal
        while True:
            r = j.current
            if r.component != J.COMPONENT_APP:
                return r
            s = r.state
            keep = r.flags & J.FLAG_KEEP_BACKUP
            if s == J.STAGED and r.flags & J.FLAG_INSTALL_REQUESTED:
                self._check_staged(r)
            elif s == J.BACKUP:
                self._do_backup(r)
            elif s == J.INSTALLING:
                self._do_install(r)
            elif s == J.REVERTING:
                self._do_revert(r)
            elif s == J.TRIAL:
                if r.flags & J.FLAG_REVERT_REQUESTED or r.boot_count >= self.board.max_trial_boots:
                    j.append(r.copy(state=J.REVERTING, progress=0))
                else:
                    return j.append(r.copy(boot_count=r.boot_count + 1))
            elif s == J.FAILED and keep:
                self.resume_trial(r)
            elif s == J.DOWNLOADING and keep:
                j.append(r.copy(state=J.FAILED, progress=InterruptedStagingError.code))
            else:
                return r

    def _check_app(self, r, may_revert):
        """The application about to run must match the installed record's signed digest. When
        it does not (files changed behind the loader's back, a tree an older loader left mixed
        after running out of space), restore it from a slot holding exactly that bundle (the
        backup, then the staging slot: _apply verifies before it touches /app); else revert to
        the backup's confirmed application (a REVERTING record; returns False: settle again);
        else empty /app, so that no unsigned tree runs. A loader update in flight is left to
        the new loader's own health check. Returns True when the boot may go on."""
        if r.component != J.COMPONENT_APP and r.state not in J.CLOSED:
            return True
        inst = self.installed()
        if not inst.version and inst.digest == J.ZERO_DIGEST:
            return True  # nothing installed yet
        try:
            tree = self.app_digest()[1]
            if tree == inst.digest:
                return True
            dev = self.nvm().get(DEV_TREE)
            if dev is not None and bytes(dev[1]) == tree:
                return True
        except Exception:  # noqa: S110  (an unreadable tree: restored like a changed one)
            pass
        hdr = self.backup_header()
        sources = []
        if hdr is not None and hdr.digest == inst.digest and hdr.size == inst.size:
            sources.append((self.backup, BACKUP_DATA))
        if inst.size <= self.staging.size:
            sources.append((self.staging, 0))
        for region, offset in sources:
            try:
                self._apply(RegionReader(region, inst.size, offset), inst.size, inst.digest)
                return True
            except Exception:  # noqa: S110  (not this copy: corrupt, another bundle, no space)
                pass
        if may_revert and hdr is not None:
            self.journal.append(Record(component=J.COMPONENT_APP, state=J.REVERTING,
                                       progress=DigestError.code, size=inst.size,
                                       version=inst.version, digest=inst.digest))
            return False
        try:
            self._clear()
        except OSError:
            pass
        return True

    def fail(self, r, code):
        """The update of record r is abandoned before anything was replaced: FAILED with the
        error code; when it was staged on top of an unconfirmed trial, the trial goes on."""
        self.journal.append(r.copy(state=J.FAILED, progress=code))
        if r.flags & J.FLAG_KEEP_BACKUP:
            self.resume_trial(self.journal.current)

    def resume_trial(self, r):
        """An update staged on top of an unconfirmed trial failed: the trial goes on."""
        inst = self.installed()
        self.journal.append(Record(component=J.COMPONENT_APP, state=J.TRIAL,
                                   boot_count=r.boot_count, size=inst.size,
                                   version=inst.version, digest=inst.digest))

    def _check_staged(self, r):
        """Verify again before installing: size, anti-rollback, bundle structure, digest, and
        room in littlefs for the bundle once the running application's files are gone."""
        inst = self.installed()
        try:
            if r.version <= inst.version:
                raise RollbackError("staged version %d is not above %d" % (r.version, inst.version))
            if r.size > self.staging.size:
                raise SizeError("staged size exceeds the slot")
            space = self._space()
            h = hashlib.sha256()
            need = self._scan(RegionReader(self.staging, r.size), r.size, h,
                              space[0] if space else _BUF)
            if h.digest() != r.digest:
                raise DigestError("staged payload does not match its digest")
            most = None
            if space is not None:
                try:
                    most = self._free_without_app(space)
                except OSError:  # the tree cannot be listed: the install will tell
                    pass
            if most is not None and need > most:
                raise NoSpaceError("the bundle needs %d littlefs blocks, at most %d are free "
                                   "without the running application" % (need, most))
        except (BundleError, DigestError, RollbackError, SizeError) as e:
            self.fail(r, e.code)
            return
        nxt = J.INSTALLING if r.flags & J.FLAG_KEEP_BACKUP else J.BACKUP
        # INSTALLING's boot_count counts the attempts at the new application's NVM migration
        self.journal.append(r.copy(state=nxt, progress=0, boot_count=0))

    def write_backup(self):
        """Make the backup slot hold the canonical bundle of the installed application, unless
        it already does (its header is written last: a cut leaves no valid header). Returns
        False when the bundle does not fit in the slot. The install's backup step; a delta
        staging also calls it while the installed application is the confirmed one (the
        backup then holds the patch's source)."""
        inst = self.installed()
        hdr = self.backup_header()
        if hdr is None or hdr.digest != inst.digest or hdr.version != inst.version:
            h = hashlib.sha256()
            count = _CountSink(h)
            bundle.serialize(self.app_dir, count, self.buf)
            size = count.n
            if size > self.backup.size - BACKUP_DATA:
                return False
            self.backup.erase(0)
            w = PageWriter(self.backup, BACKUP_DATA)
            w.erased_to = self.backup.sector
            h2 = hashlib.sha256()
            bundle.serialize(self.app_dir, _TeeSink(w, h2), self.buf)
            w.flush()
            digest = h2.digest()
            body = struct.pack(_BK_FMT, _BK_MAGIC, inst.version, size, digest)
            self.backup.program(0, body + struct.pack("<I", crc32(body)))
        return True

    def _do_backup(self, r):
        if not self.write_backup():
            self.fail(r, SizeError.code)
            return
        self.journal.append(r.copy(state=J.INSTALLING, progress=0))

    def _has_migrations(self):
        try:
            names = os.listdir(self.app_dir)
        except OSError:
            return False
        return any(n in names for n in _MIGRATION_FILES)

    def _migrations(self):
        """The new application's NVM migration function, or None. Its module is code the loader
        did not write: whatever its import raises is a MigrationError."""
        import sys

        sys.path.insert(0, self.app_dir)
        try:
            mod = __import__(MIGRATIONS)
        except Exception as e:
            raise MigrationError("%s does not import: %s: %s" % (MIGRATIONS, type(e).__name__, e))
        finally:
            sys.path.pop(0)
            sys.modules.pop(MIGRATIONS, None)
        return getattr(mod, "migrate", None)

    def _do_install(self, r):
        self._nvm = None
        try:
            self._apply(RegionReader(self.staging, r.size), r.size, r.digest)
            if r.flags & J.FLAG_KEEP_BACKUP:
                hdr = self.backup_header()
                if hdr is None:
                    raise BackupError("no backup of the confirmed application")
                confirmed = hdr.version
            else:
                confirmed = self.installed().version
            nvm = Nvm(self.nvm_region, confirmed)
            fn = None
            if nvm.migrated(r.version) is None and self._has_migrations():
                # The migration runs the application's code: count the attempt first, so one
                # that ends the boot each time (a reset, a hang and the watchdog) is given up.
                if r.boot_count >= self.board.max_trial_boots:
                    raise MigrationError("the NVM migration did not finish in %d attempts"
                                         % r.boot_count)
                r = self.journal.append(r.copy(boot_count=r.boot_count + 1))
                fn = self._migrations()
            nvm.migrate(confirmed, r.version, fn)
            installed.write(self.installed_path, installed.Installed(r.version, r.size, r.digest))
        except Exception as e:  # LoaderError, OSError, or whatever the migration raised
            self.journal.append(r.copy(state=J.REVERTING, progress=_code(e)))
            return
        self.journal.append(r.copy(state=J.TRIAL, boot_count=0, progress=0,
                                   flags=r.flags & J.FLAG_KEEP_BACKUP))

    def _do_revert(self, r):
        """Restore the backup (its bundle is verified before /app is emptied and written
        again). REVERTED keeps the REVERTING record's progress: the code of the install error
        that caused the revert, 0 for a requested or timed-out one. When the restore fails,
        FAILED, and the boot's last check (_check_app) restores or empties /app."""
        self._nvm = None
        hdr = self.backup_header()
        try:
            if hdr is None:
                raise BackupError("no valid backup to revert to")
            self._apply(RegionReader(self.backup, hdr.size, BACKUP_DATA), hdr.size, hdr.digest)
        except Exception as e:
            self.journal.append(r.copy(state=J.FAILED, flags=0, progress=_code(e)))
            return
        Nvm(self.nvm_region, hdr.version).drop_above(hdr.version)
        installed.write(self.installed_path,
                        installed.Installed(hdr.version, hdr.size, hdr.digest))
        self.journal.append(r.copy(state=J.REVERTED, flags=0, boot_count=0,
                                   version=hdr.version, size=hdr.size, digest=hdr.digest))

    # ---- littlefs ------------------------------------------------------------------------
    def _space(self):
        """(block size, free blocks) of the littlefs mount, or None when the port cannot say."""
        try:
            st = os.statvfs(self.board.mount_point)
        except (AttributeError, OSError):
            return None
        return (st[0], st[3]) if st[0] else None

    def _scan(self, stream, size, hasher, bsize):
        """Read a whole bundle (structure checked, every byte to hasher). Returns the littlefs
        blocks its files and directories take at least once installed: a file larger than an
        eighth of a block is never inlined in its directory's metadata (littlefs caps inline
        files there), and a directory is a metadata pair."""
        r = bundle.Reader(stream, size, hasher)
        blocks = 0
        dirs = set()
        while True:
            e = r.next()
            if e is None:
                break
            path, n = e
            if n > bsize // 8:
                blocks += _ctz_blocks(n, bsize)
            i = path.rfind(b"/")
            while i > 0:
                path = path[:i]
                dirs.add(path)
                i = path.rfind(b"/")
            while r.read(self.buf):
                pass
        return blocks + 2 * len(dirs)

    def _free_without_app(self, space):
        """At most the littlefs blocks free once app_dir is emptied: statvfs's free blocks, plus
        two for each directory (MicroPython's statvfs counts a directory's metadata pair twice),
        plus the blocks of app_dir's files and sub-directories. An install is refused only when
        the bundle surely cannot fit; a closer call is tried, and running out of space midway
        is reverted (_apply, _do_revert)."""
        bsize, free = space
        most = free + 2 * _count_dirs(self.board.mount_point)
        dirs = set()
        for p in bundle.list_files(self.app_dir):
            n = os.stat(self.app_dir + "/" + p.decode())[6]
            most += _ctz_blocks(n, bsize) if n else 0
            i = p.rfind(b"/")
            while i > 0:
                p = p[:i]
                dirs.add(p)
                i = p.rfind(b"/")
        return most + 2 * len(dirs)

    def _clear(self):
        """Empty app_dir: every file (`~new` leftovers included) and sub-directory."""
        _mkdirs(self.app_dir)
        for p in bundle.list_files(self.app_dir):
            os.remove(self.app_dir + "/" + p.decode())
        _prune_dirs(self.app_dir)
        try:
            os.remove(self.installed_path + "~new")
        except OSError:
            pass

    def _apply(self, stream, size, digest):
        """Make app_dir hold exactly the bundle in stream (idempotent), then check the installed
        copy. The bundle is read and hashed first: /app is not touched unless it matches digest.
        Then app_dir is emptied, so the bundle needs only its own room (never the old and the
        new copy of a file at once), and each file is written (`name~new`, renamed over
        `name`). Out of space midway: NoSpaceError; the journal's next step (a revert, or the
        boot's _check_app) empties /app again before it restores a signed bundle."""
        h = hashlib.sha256()
        self._scan(stream, size, h, _BUF)
        if h.digest() != digest:
            raise DigestError("bundle does not match its signed digest")
        self._clear()
        stream.pos -= size
        h = hashlib.sha256()
        r = bundle.Reader(stream, size, h)
        mv = memoryview(self.buf)
        try:
            while True:
                e = r.next()
                if e is None:
                    break
                target = self.app_dir + "/" + e[0].decode()
                _mkdirs(target[: target.rfind("/")])
                tmp = target + "~new"
                with open(tmp, "wb") as f:
                    while True:
                        n = r.read(self.buf)
                        if not n:
                            break
                        f.write(mv[:n])
                os.rename(tmp, target)
        except OSError as e:
            if e.args and e.args[0] == _ENOSPC:
                raise NoSpaceError("littlefs is full: %s" % e)
            raise
        if h.digest() != digest:
            raise DigestError("payload changed while it was installed")
        if self.app_digest()[1] != digest:
            raise DigestError("installed copy does not match the signed digest")

    # ---- requests from the agent and the application -------------------------------------
    def loader_seq(self):
        """The sequence number of the confirmed loader release (0: the factory loader)."""
        got = self.nvm().get(LOADER_SEQ)
        return int.from_bytes(got[1], "little") if got else 0

    def stage(self, envelope, stream, install=True):
        """Verify envelope and stage the payload read from stream (loader.staging.stage)."""
        from loader import staging

        return staging.stage(self, envelope, stream, install)

    def request_install(self):
        r = self.journal.current
        if r.state != J.STAGED:
            raise StateError("nothing staged (%s)" % r.name())
        self.journal.append(r.copy(flags=r.flags | J.FLAG_INSTALL_REQUESTED))

    def confirm(self):
        r = self.journal.current
        if r.component != J.COMPONENT_APP or r.state != J.TRIAL:
            raise StateError("nothing to confirm (%s)" % r.name())
        if r.flags & J.FLAG_REVERT_REQUESTED:
            raise StateError("a revert is pending")
        self.journal.append(r.copy(state=J.CONFIRMED, flags=0, progress=0))

    def confirm_loader(self):
        """The new loader proved healthy: make it permanent (stage0 raises its anti-rollback
        counter and refreshes its backup at the next boot). Its release's sequence number is
        kept in NVM, so an older loader release is refused from now on."""
        r = self.journal.current
        if r.component != J.COMPONENT_LOADER or r.state != J.TRIAL:
            raise StateError("no loader trial to confirm (%s)" % r.name())
        if r.flags & J.FLAG_REVERT_REQUESTED:
            raise StateError("a revert is pending")
        self.nvm().put(LOADER_SEQ, r.version.to_bytes(4, "little"), 1, keep=True)
        self.journal.append(r.copy(state=J.CONFIRMED, flags=0, progress=0))

    def request_loader_revert(self):
        """The new loader failed its health check: stage0 restores the previous one."""
        r = self.journal.current
        if r.component != J.COMPONENT_LOADER or r.state != J.TRIAL:
            raise StateError("no loader trial to revert (%s)" % r.name())
        self.journal.append(r.copy(flags=r.flags | J.FLAG_REVERT_REQUESTED))

    def accept_developer_tree(self):
        """A developer copied files into /app (`suture board deploy`): let exactly this tree
        run at the next boots instead of restoring the signed bundle. Returns its digest."""
        digest = self.app_digest()[1]
        self.nvm().put(DEV_TREE, digest, 1, keep=True)
        return digest

    def request_revert(self):
        r = self.journal.current
        if r.component != J.COMPONENT_APP or r.state != J.TRIAL:
            raise StateError("no trial to revert (%s)" % r.name())
        self.journal.append(r.copy(flags=r.flags | J.FLAG_REVERT_REQUESTED))

    def provision(self, stream, size, version):
        """Factory step: install a first application without a backup and mark it confirmed."""
        h = hashlib.sha256()
        bundle.verify_stream(stream, size, h, self.buf)
        digest = h.digest()
        stream.pos -= size
        self._apply(stream, size, digest)
        installed.write(self.installed_path, installed.Installed(version, size, digest))
        self.journal.append(Record(component=J.COMPONENT_APP, state=J.CONFIRMED, size=size,
                                   version=version, digest=digest))


def _code(e):
    """The journal code of an install or revert failure: a loader error's own, NoSpaceError's
    for a full littlefs, LoaderError's for anything else (another OSError, an error in code the
    loader did not write)."""
    if isinstance(e, LoaderError):
        return e.code
    if isinstance(e, OSError) and e.args and e.args[0] == _ENOSPC:
        return NoSpaceError.code
    return LoaderError.code


def _ctz_blocks(size, bsize):
    """Blocks of a littlefs file of size bytes (> 0): block i > 0 starts with ctz(i) + 1 skip
    pointers, so n blocks hold n * bsize - 4 * (2 * (n - 1) - popcount(n - 1)) bytes."""
    n = (size + bsize - 9) // (bsize - 8)  # an upper bound (2 pointers a block at most on
    while n > 1:                              # average); step down to the exact count
        m = n - 2
        ones = 0
        while m:
            m &= m - 1
            ones += 1
        if (n - 1) * bsize - 4 * (2 * (n - 2) - ones) < size:
            break
        n -= 1
    return n


def _count_dirs(path):
    """Directories below path, at any depth."""
    n = 0
    for entry in os.ilistdir(path):
        if entry[1] == 0x4000:
            n += 1 + _count_dirs(path + "/" + entry[0])
    return n


def _mkdirs(path):
    parts = path.split("/")
    cur = ""
    for p in parts:
        if not p:
            continue
        cur += "/" + p
        try:
            os.stat(cur)
        except OSError:
            os.mkdir(cur)


def _prune_dirs(root):
    """Remove empty directories below root."""
    for entry in list(os.ilistdir(root)):
        if entry[1] == 0x4000:
            sub = root + "/" + entry[0]
            _prune_dirs(sub)
            if not os.listdir(sub):
                os.rmdir(sub)
