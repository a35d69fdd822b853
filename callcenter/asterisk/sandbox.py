"""The sandboxed Asterisk 22: installed from Debian sid into its own root, run with chroot.

Debian 12 has no Asterisk package and sid's would drag a newer libc onto the host, so
``install()`` debootstraps a minimal sid root (``settings.sandbox_root``, by default
``<data_dir>/asterisk-root``) with Asterisk, its modules, the English sounds and Debian's
music on hold. The root is reused while it exists; a crashed install is left in
``<root>.partial`` and redone, never mistaken for a good one.

Several instances run side by side from one root: each has its own folder
``<root>/srv/callcenter/<instance>/{etc,run,log,spool,lib,cache}`` and its own
``asterisk.conf``, listens on the ports of its settings, and shares the sounds
(``/usr/share/asterisk``, where our prompts are copied as ``callcenter/<name>``).

External mode (``asterisk.mode = "external"``): someone else runs Asterisk. Install, start and
stop refuse; ``callcenter asterisk config DIR`` writes the generated files an admin
``#include``s (see ``callcenter.asterisk.confgen``).
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from callcenter.asterisk import confgen
from callcenter.config import REPO_ROOT, Settings
from callcenter.core.flows.names import LANGUAGE_RE
from callcenter.features.agents.store import AgentAccount
from callcenter.private_files import write_private

log = logging.getLogger(__name__)

STATIC_CONF_DIR = REPO_ROOT / "asterisk-conf"
ASTERISK_CONF_TEMPLATE = "asterisk.conf.template"
INSTANCES_IN_ROOT = PurePosixPath("/srv/callcenter")
ASTERISK_BINARY = PurePosixPath("/usr/sbin/asterisk")
SOUNDS_IN_ROOT = PurePosixPath("/usr/share/asterisk/sounds")
DEBIAN_SUITE = "sid"
DEBIAN_PACKAGES = ("asterisk", "asterisk-modules", "asterisk-core-sounds-en-gsm",
                   "asterisk-moh-opsound-gsm")
# spool/recording: where callers' recorded names go (ASTSPOOLDIR/recording); spool/monitor:
# MixMonitor's call recordings until the service moves them (features/recordings).
INSTANCE_FOLDERS = ("etc", "run", "log", "spool", "spool/recording", "spool/monitor", "lib",
                    "lib/keys", "cache")
CHROOT_ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8", "HOME": "/"}
REQUIRED_PROMPTS = ("sorry-fallback", "sorry-no-agent")


class SandboxError(RuntimeError):
    """The sandbox cannot do what was asked; the message says why and what to do."""


@dataclass(frozen=True)
class SandboxStatus:
    mode: str
    instance: str
    root: Path
    installed: bool
    running: bool
    pid: int | None
    ami: str  # host:port
    sip: str  # host:port (UDP)
    rtp: str  # start-end (UDP)

    def describe(self) -> str:
        state = f"running (pid {self.pid})" if self.running else "stopped"
        lines = [
            f"mode:      {self.mode}",
            f"instance:  {self.instance}",
            f"root:      {self.root} ({'installed' if self.installed else 'not installed'})",
            f"asterisk:  {state}",
            f"AMI:       {self.ami} (TCP)",
            f"SIP:       {self.sip} (UDP)",
            f"RTP:       {self.rtp} (UDP)",
        ]
        return "\n".join(lines)


class Sandbox:
    """One Asterisk instance in the shared sandbox root."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.root = settings.sandbox_root.absolute()
        self.instance = settings.asterisk.instance
        self.instance_in_root = INSTANCES_IN_ROOT / self.instance
        self.instance_dir = self._host_path(self.instance_in_root)
        self.etc_dir = self.instance_dir / "etc"
        self.conf_in_root = self.instance_in_root / "etc" / "asterisk.conf"
        self.pid_file = self.instance_dir / "run" / "asterisk.pid"
        self.output_log = self.instance_dir / "log" / "console.log"
        self.messages_log = self.instance_dir / "log" / "messages.log"
        self._process: subprocess.Popen[bytes] | None = None

    # ------------------------------------------------------------------ paths

    def _host_path(self, path_in_root: PurePosixPath) -> Path:
        return self.root / path_in_root.relative_to("/")

    def _resolve_in_root(self, path_in_root: PurePosixPath) -> Path:
        """The host path of a path inside the root, following symlinks as chroot would."""
        current = PurePosixPath("/")
        pending = list(path_in_root.relative_to("/").parts)
        for _ in range(200):  # bounded: a symlink loop ends here
            if not pending:
                return self._host_path(current)
            part = pending.pop(0)
            candidate = current / part if part != ".." else current.parent
            host = self._host_path(candidate)
            if host.is_symlink():
                target = PurePosixPath(os.readlink(host))
                base = PurePosixPath("/") if target.is_absolute() else current
                pending = [*(base / target).relative_to("/").parts, *pending]
                current = PurePosixPath("/")
            else:
                current = candidate
        raise SandboxError(f"{path_in_root}: too many symbolic links in the sandbox root")

    @property
    def installed(self) -> bool:
        return self._host_path(ASTERISK_BINARY).is_file()

    def _modules_dir_in_root(self) -> PurePosixPath:
        found = sorted(self.root.glob("usr/lib/*/asterisk/modules")) or sorted(
            self.root.glob("usr/lib/asterisk/modules"))
        if not found:
            raise SandboxError(f"{self.root}: no Asterisk modules folder; reinstall the sandbox")
        return PurePosixPath("/") / found[0].relative_to(self.root).as_posix()

    def _refuse_external(self, what: str) -> None:
        if self.settings.asterisk.mode != "sandbox":
            raise SandboxError(
                f"cannot {what}: asterisk.mode is {self.settings.asterisk.mode!r}, so Asterisk "
                "is run by someone else. Use `callcenter asterisk config DIR` to write the "
                "generated files for its admin to #include.")

    def _require_installed(self) -> None:
        if not self.installed:
            raise SandboxError(
                f"the sandboxed Asterisk is not installed in {self.root}; "
                "run `callcenter asterisk install` first")

    # ------------------------------------------------------------------ install

    def install(self) -> bool:
        """Debootstrap the root unless it is already there. True if it installed now."""
        self._refuse_external("install the sandbox")
        if self.installed:
            return False
        if os.geteuid() != 0:
            raise SandboxError("installing the sandbox needs root (debootstrap and chroot)")
        if self.root.exists() and any(self.root.iterdir()):
            raise SandboxError(f"{self.root} exists but holds no Asterisk; remove it or set "
                               "asterisk.sandbox_root to another folder")
        _ensure_debootstrap()
        partial = self.root.with_name(self.root.name + ".partial")
        if partial.exists():
            log.warning("removing an unfinished sandbox install in %s", partial)
            _unmount_all_under(partial)
            shutil.rmtree(partial)
        partial.parent.mkdir(parents=True, exist_ok=True)
        command = ["debootstrap", "--variant=minbase", f"--include={','.join(DEBIAN_PACKAGES)}",
                   DEBIAN_SUITE, str(partial), self.settings.asterisk.debian_mirror]
        log.info("installing Asterisk into %s (about a minute, about 500 MB)", self.root)
        returncode, tail = _run_debootstrap(command)
        _unmount_all_under(partial)
        if returncode != 0:
            raise SandboxError(f"debootstrap failed (exit {returncode}); the unfinished "
                               f"root stays in {partial}:\n{tail}")
        if not (partial / ASTERISK_BINARY.relative_to("/")).is_file():
            raise SandboxError(f"debootstrap finished but {partial} has no {ASTERISK_BINARY}")
        if self.root.exists():
            self.root.rmdir()  # checked empty above
        partial.rename(self.root)
        return True

    # ------------------------------------------------------------------ configuration

    def write_config(self, agents: Sequence[AgentAccount] | None = None, *,
                     prompts: bool = True) -> list[str]:
        """Static asterisk-conf files, the rendered asterisk.conf and the generated files
        (agents from the database when given, else the settings'), and with ``prompts`` our
        prompts into the sounds folder. Returns the names of the files whose text changed (a
        running Asterisk needs those modules reloaded)."""
        self._refuse_external("write the sandbox configuration")
        self._require_installed()
        self._make_instance_folders()
        uid, gid = self._asterisk_ids()
        files = {path.name: path.read_text(encoding="utf-8")
                 for path in sorted(STATIC_CONF_DIR.glob("*.conf"))}
        files["asterisk.conf"] = self._render_asterisk_conf()
        files.update(confgen.sandbox_files(self.settings, agents))
        for stale in self.etc_dir.glob("*.conf"):
            if stale.name not in files:
                stale.unlink()
        changed = []
        for name, text in files.items():
            path = self.etc_dir / name
            if not path.is_file() or path.read_text(encoding="utf-8") != text:
                changed.append(name)
            # Secrets inside: readable by root and Asterisk's group only, even while written.
            write_private(path, text, mode=0o640, group=gid)
        if prompts:
            self._install_prompts()
        log.debug("wrote %d configuration files to %s (uid %d)", len(files), self.etc_dir, uid)
        return changed

    def _render_asterisk_conf(self) -> str:
        template = (STATIC_CONF_DIR / ASTERISK_CONF_TEMPLATE).read_text(encoding="utf-8")
        values = {f"{folder.upper()}_DIR": str(self.instance_in_root / folder)
                  for folder in INSTANCE_FOLDERS if "/" not in folder}
        values["MOD_DIR"] = str(self._modules_dir_in_root())
        for key, value in values.items():
            template = template.replace(f"@@{key}@@", value)
        unknown = re.findall(r"@@[A-Z_]+@@", template)
        if unknown:
            raise SandboxError(f"{ASTERISK_CONF_TEMPLATE}: no value for {', '.join(unknown)}")
        return template

    def prompt_folder(self, language: str | None = None) -> Path:
        """Where (on the host) Asterisk finds our prompts as ``callcenter/<name>`` for a
        language (by default the IVR's)."""
        language = language or self.settings.ivr.language
        return self._resolve_in_root(SOUNDS_IN_ROOT / language) / "callcenter"

    def _install_prompts(self) -> None:
        """Copy ivr_prompts/<lang>/*.wav, for every language there, to the shared sounds as
        sounds/<lang>/callcenter/<name>: Asterisk plays the channel's language."""
        default = self.settings.ivr.language
        source = self.settings.prompts_path / default
        missing = [n for n in REQUIRED_PROMPTS if not (source / f"{n}.wav").is_file()]
        if missing:
            log.warning("prompts %s missing in %s: the fallback dialplan will be silent there",
                        ", ".join(missing), source)
        folders = sorted(p for p in self.settings.prompts_path.glob("*")
                         if p.is_dir() and LANGUAGE_RE.fullmatch(p.name))
        for folder in folders:
            target = self.prompt_folder(folder.name)
            target.mkdir(parents=True, exist_ok=True)
            for wav in sorted(folder.glob("*.wav")):
                destination = target / wav.name
                if destination.exists() and destination.read_bytes() == wav.read_bytes():
                    continue
                # Its own temporary name: instances started at once each copy (parallel tests).
                temporary = target / f".{wav.name}.{os.getpid()}.tmp"
                shutil.copyfile(wav, temporary)
                temporary.chmod(0o644)
                temporary.replace(destination)

    def _asterisk_ids(self) -> tuple[int, int]:
        """The uid and gid of the root's asterisk user (not the host's)."""
        passwd = self._host_path(PurePosixPath("/etc/passwd")).read_text(encoding="utf-8")
        for line in passwd.splitlines():
            fields = line.split(":")
            if fields[0] == "asterisk" and len(fields) > 3:
                return int(fields[2]), int(fields[3])
        raise SandboxError(f"{self.root}: no asterisk user in /etc/passwd; reinstall the sandbox")

    def _make_instance_folders(self) -> None:
        uid, gid = self._asterisk_ids()
        self.instance_dir.mkdir(parents=True, exist_ok=True)
        self.instance_dir.chmod(0o755)
        for folder in INSTANCE_FOLDERS:
            path = self.instance_dir / folder
            path.mkdir(exist_ok=True)
            if folder == "etc":  # read by Asterisk, written by us
                os.chown(path, 0, gid)
                path.chmod(0o750)
            else:
                for current, _dirs, names in os.walk(path):
                    os.chown(current, uid, gid)
                    for name in names:
                        os.chown(os.path.join(current, name), uid, gid)

    # ------------------------------------------------------------------ running

    def start(self, timeout: float = 60) -> None:
        """Start this instance (if it is not running) and wait until it is fully booted."""
        self._refuse_external("start Asterisk")
        self._require_installed()
        if self.pid() is not None:
            return
        if not (self.etc_dir / "asterisk.conf").is_file():
            self.write_config()
        self._check_ports_free()
        self._make_instance_folders()
        self.pid_file.unlink(missing_ok=True)
        command = ["chroot", str(self.root), str(ASTERISK_BINARY), "-f",
                   "-C", str(self.conf_in_root), "-U", "asterisk", "-G", "asterisk"]
        with _proc_mount_lock(self.root), open(self.output_log, "ab") as output:
            _mount_proc(self.root)
            output.write(f"\n--- callcenter: starting {' '.join(command)}\n".encode())
            output.flush()
            self._process = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT,
                env=CHROOT_ENV, start_new_session=True, close_fds=True)
            _wait_until_inside(self._process, self.root)  # seen by stop() in another process
        log.info("started Asterisk instance %s (pid %d)", self.instance, self._process.pid)
        try:
            self._wait_until_ready(timeout)
        except BaseException:
            self._kill_process()
            raise

    def _check_ports_free(self) -> None:
        asterisk = self.settings.asterisk
        ami_host = "127.0.0.1" if asterisk.host == "localhost" else asterisk.host
        checks = [("asterisk.ami_port", socket.SOCK_STREAM, ami_host, asterisk.ami_port),
                  ("asterisk.sip_port", socket.SOCK_DGRAM, asterisk.sip_host, asterisk.sip_port)]
        for setting, kind, host, port in checks:
            family = socket.AF_INET6 if ":" in host else socket.AF_INET
            with socket.socket(family, kind) as probe:
                if kind == socket.SOCK_STREAM:
                    probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    probe.bind((host, port))
                except OSError as exc:
                    raise SandboxError(
                        f"{setting}: {host}:{port} is already in use ({exc.strerror}); another "
                        "Asterisk or program listens there. Stop it or choose another port."
                    ) from None

    def _wait_until_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self._process is not None and self._process.poll() is not None:
                raise SandboxError(
                    f"Asterisk instance {self.instance} exited with code "
                    f"{self._process.returncode} while starting:\n{self.log_tail()}")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise SandboxError(f"Asterisk instance {self.instance} did not become ready "
                                   f"within {timeout:.0f} s:\n{self.log_tail()}")
            answer = self._run_cli("core waitfullybooted", timeout=max(1.0, remaining))
            if answer is not None and "fully booted" in answer.lower() and self._ami_accepts():
                return
            time.sleep(0.2)

    def _ami_accepts(self) -> bool:
        host = self.settings.asterisk.host
        with contextlib.suppress(OSError), socket.create_connection(
                (host, self.settings.asterisk.ami_port), timeout=1):
            return True
        return False

    def stop(self, timeout: float = 20) -> None:
        """Stop this instance (core stop now, then signals); unmount proc if none runs."""
        self._refuse_external("stop Asterisk")
        pid = self.pid()
        if pid is not None:
            self._run_cli("core stop now", timeout=10)
            if not _wait_gone(pid, self._process, timeout / 2):
                log.warning("Asterisk instance %s ignored 'core stop now'; terminating",
                            self.instance)
                self._signal(pid, signal.SIGTERM)
                if not _wait_gone(pid, self._process, timeout / 2):
                    self._signal(pid, signal.SIGKILL)
                    _wait_gone(pid, self._process, 5)
        self._reap()
        if self.installed:
            with _proc_mount_lock(self.root):
                if not processes_in_root(self.root):
                    _unmount_proc(self.root)

    def _kill_process(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._signal(self._process.pid, signal.SIGKILL)
        self._reap()

    def _signal(self, pid: int, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)

    def _reap(self) -> None:
        if self._process is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._process.wait(timeout=5)
            if self._process.poll() is not None:
                self._process = None

    def pid(self) -> int | None:
        """The pid of this instance's Asterisk if it is running, else None."""
        if self._process is not None and self._process.poll() is None:
            return self._process.pid
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if self._is_our_asterisk(pid) else None

    def _is_our_asterisk(self, pid: int) -> bool:
        proc = Path(f"/proc/{pid}")
        try:
            if _process_state(pid) in ("Z", "X"):
                return False
            if Path(os.readlink(proc / "root")) != self.root.resolve():
                return False
            arguments = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            return False
        return str(self.conf_in_root).encode() in arguments

    def status(self) -> SandboxStatus:
        asterisk = self.settings.asterisk
        pid = self.pid() if asterisk.mode == "sandbox" else None
        return SandboxStatus(
            mode=asterisk.mode, instance=self.instance, root=self.root,
            installed=self.installed, running=pid is not None, pid=pid,
            ami=f"{asterisk.host}:{asterisk.ami_port}",
            sip=f"{asterisk.sip_host}:{asterisk.sip_port}",
            rtp=f"{asterisk.rtp_start}-{asterisk.rtp_end}",
        )

    def cli(self, command: str, timeout: float = 30) -> str:
        """Run one Asterisk CLI command in this instance and return its output."""
        if any(c in command for c in "\r\n\0"):
            raise ValueError("an Asterisk CLI command must be one line")
        if not command.strip():
            raise ValueError("an Asterisk CLI command must not be empty")
        if self.pid() is None:
            raise SandboxError(f"Asterisk instance {self.instance} is not running")
        output = self._run_cli(command, timeout=timeout)
        if output is None:
            raise SandboxError(f"Asterisk instance {self.instance} did not answer {command!r}")
        return output

    def _run_cli(self, command: str, timeout: float) -> str | None:
        """The output of `asterisk -rx`, or None if the instance's console did not answer."""
        arguments = ["chroot", str(self.root), str(ASTERISK_BINARY),
                     "-C", str(self.conf_in_root), "-rx", command]
        try:
            result = subprocess.run(arguments, stdin=subprocess.DEVNULL, capture_output=True,
                                    env=CHROOT_ENV, timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            return None
        output = result.stdout.decode(errors="replace")
        if result.returncode != 0 or "Unable to connect to remote asterisk" in output:
            return None
        return output

    def reload(self) -> str:
        """Rewrite the configuration and make the running instance read it."""
        self.write_config()
        return self.cli("core reload")

    def proc_mounted(self) -> bool:
        """Whether the shared root's /proc is mounted (while any instance runs)."""
        return str(self.root.resolve() / "proc") in _mount_points()

    def log_tail(self, lines: int = 30) -> str:
        """The last lines of the instance's console output and log file, for error messages."""
        parts = []
        for path in (self.output_log, self.messages_log):
            if path.is_file():
                text = path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:]
                parts.append(f"--- {path}\n" + "\n".join(text))
        return "\n".join(parts) or "(no log written)"

    def remove_instance(self) -> None:
        """Delete this instance's folder (configuration, logs, astdb). It must be stopped."""
        if self.pid() is not None:
            raise SandboxError(f"Asterisk instance {self.instance} is running; stop it first")
        if self.instance_dir.is_dir():
            shutil.rmtree(self.instance_dir)


# --------------------------------------------------------------------------- helpers


def _ensure_debootstrap() -> None:
    if shutil.which("debootstrap"):
        return
    apt = shutil.which("apt-get")
    if apt is None:
        raise SandboxError("debootstrap is missing and there is no apt-get to install it")
    log.info("installing debootstrap with apt-get")
    environment = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in ([apt, "update"], [apt, "install", "-y", "debootstrap"]):
        result = subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True,
                                env=environment, check=False)
        if result.returncode != 0:
            raise SandboxError(f"{' '.join(command)} failed:\n"
                               f"{result.stderr.decode(errors='replace')[-2000:]}")


DEBOOTSTRAP_STAGES = ("Retrieving InRelease", "Resolving dependencies", "Installing core",
                      "Unpacking required", "Configuring required", "Unpacking the base",
                      "Configuring the base", "Base system installed")


def _run_debootstrap(command: list[str]) -> tuple[int, str]:
    """Run debootstrap, logging its stages as progress; return its exit code and last lines."""
    tail: deque[str] = deque(maxlen=30)
    with subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, errors="replace") as process:
        assert process.stdout is not None
        for raw in process.stdout:
            line = raw.rstrip()
            tail.append(line)
            if line.startswith(("W:", "E:")):
                log.warning("debootstrap: %s", line)
            elif any(stage in line for stage in DEBOOTSTRAP_STAGES):
                log.info("debootstrap: %s", line)
            else:
                log.debug("debootstrap: %s", line)
    return process.returncode, "\n".join(tail)


def _mount_points() -> list[str]:
    with open("/proc/mounts", encoding="utf-8") as mounts:
        # Spaces in mount points are written as \040.
        return [line.split()[1].replace("\\040", " ") for line in mounts if line.strip()]


def _mount_proc(root: Path) -> None:
    proc = root.resolve() / "proc"
    if str(proc) in _mount_points():
        return
    proc.mkdir(exist_ok=True)
    result = subprocess.run(["mount", "-t", "proc", "proc", str(proc)], capture_output=True,
                            check=False)
    if result.returncode != 0:
        raise SandboxError(f"cannot mount proc in {proc}: {result.stderr.decode().strip()}")


@contextlib.contextmanager
def _proc_mount_lock(root: Path) -> Iterator[None]:
    """Held while /proc is mounted and an instance enters the root, and while the last one
    out unmounts it: processes starting and stopping instances side by side (parallel tests)
    would otherwise unmount /proc under an Asterisk that is just starting."""
    with open(root.resolve() / ".proc-mount.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _wait_until_inside(process: subprocess.Popen[bytes], root: Path, timeout: float = 10) -> None:
    """Wait until ``chroot`` has entered the root (or exited), so processes_in_root sees it."""
    resolved = str(root.resolve())
    deadline = time.monotonic() + timeout
    while process.poll() is None and time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            if os.readlink(f"/proc/{process.pid}/root") == resolved:
                return
        time.sleep(0.005)


def _unmount_proc(root: Path) -> None:
    proc = str(root.resolve() / "proc")
    if proc in _mount_points():
        subprocess.run(["umount", proc], capture_output=True, check=False)


def _unmount_all_under(folder: Path) -> None:
    """Unmount whatever a crashed debootstrap left mounted inside folder (deepest first)."""
    prefix = str(folder.resolve()) + "/"
    for point in sorted((p for p in _mount_points() if p.startswith(prefix)), reverse=True):
        subprocess.run(["umount", "-l", point], capture_output=True, check=False)


def _process_state(pid: int) -> str:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat.rpartition(")")[2].split()[0]


def processes_in_root(root: Path) -> list[int]:
    """Pids of live processes chrooted into root (any instance's Asterisk)."""
    resolved = str(root.resolve())
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            if os.readlink(entry / "root") == resolved and _process_state(int(entry.name)) != "Z":
                pids.append(int(entry.name))
    return pids


def _wait_gone(pid: int, process: subprocess.Popen[bytes] | None, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.pid == pid:
            if process.poll() is not None:
                return True
        else:
            try:
                if _process_state(pid) in ("Z", "X"):
                    return True
            except OSError:
                return True
        time.sleep(0.1)
    return False


# --------------------------------------------------------------------------- CLI


def run_asterisk_command(settings: Settings, action: str, cli_command: str | None) -> int:
    """`callcenter asterisk install|start|stop|reload|status|cli CMD|config DIR`; exit code."""
    sandbox = Sandbox(settings)
    try:
        if action == "install":
            done = sandbox.install()
            print(f"installed the sandboxed Asterisk in {sandbox.root}" if done
                  else f"the sandboxed Asterisk is already installed in {sandbox.root}")
        elif action == "start":
            sandbox.write_config()
            was_running = sandbox.pid() is not None
            sandbox.start()
            status = sandbox.status()
            print(f"Asterisk instance {status.instance} "
                  f"{'was already running' if was_running else 'started'} (pid {status.pid}); "
                  f"AMI {status.ami}, SIP {status.sip}")
        elif action == "stop":
            running = sandbox.pid() is not None
            sandbox.stop()
            print(f"Asterisk instance {sandbox.instance} "
                  f"{'stopped' if running else 'was not running'}")
        elif action == "reload":
            sandbox.reload()
            print(f"regenerated the configuration of instance {sandbox.instance} from the "
                  "settings and reloaded Asterisk")
        elif action == "status":
            print(sandbox.status().describe())
        elif action == "cli":
            if not cli_command:
                print('cli needs a command, e.g. callcenter asterisk cli "core show channels"',
                      file=sys.stderr)
                return 2
            print(sandbox.cli(cli_command), end="")
        elif action == "config":
            if not cli_command:
                print("config needs the folder to write the generated files to",
                      file=sys.stderr)
                return 2
            for path in confgen.write_generated(settings, cli_command):
                print(f"wrote {path}")
            print('Add #include "<file>" lines for them in pjsip.conf, extensions.conf, '
                  "queues.conf, confbridge.conf, manager.conf, cel_sqlite3_custom.conf and "
                  "modules.conf's [modules] (it noloads the modules that run programs), and "
                  "callcenter-cel.conf's inside cel.conf's [general]; for attended transfers set "
                  "atxfer => *2 and an empty blindxfer in features.conf [featuremap]; load "
                  "app_confbridge and cel_sqlite3_custom; then reload Asterisk. The service "
                  "reads the calls it missed from callcenter-cel.db in Asterisk's log folder "
                  "(setting asterisk.cel_log).")
        else:
            print(f"unknown action {action!r}: use install, start, stop, reload, status, cli "
                  "or config",
                  file=sys.stderr)
            return 2
    except (SandboxError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0
