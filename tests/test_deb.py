"""The Debian package on this machine: lintian, systemd-analyze, install, run as the beacon user,
reinstall and upgrade keeping a changed conffile, remove, purge.

`make test-deb` runs this module through packaging/test-deb, which builds the package, installs
the tools (lintian, systemd) and sets BEACON_DEB. It installs and purges a package, so it needs
root and a machine without beacon installed, and a plain `make test` does not collect it
(no BEACON_DEB, see conftest.py). Once it runs, a missing tool is a failure, not a skip. The
tests run in file order: each step of the package's life starts from where the previous one
left it. However they end, the package is purged and the machine left as it was found.
"""

from __future__ import annotations

import contextlib
import datetime
import grp
import json
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

DEB = os.environ.get("BEACON_DEB", "")

CONFIG = Path("/etc/beacon/config.json")
DATA = Path("/var/lib/beacon")
SPOOL = Path("/var/spool/beacon")
PREFIX = Path("/usr/lib/beacon")
UNITS = [Path("/lib/systemd/system/beacon.service"), Path("/lib/systemd/system/beacon.socket")]
LOCAL_CHANGE = "// local change, kept across reinstalls and upgrades"


def run(*cmd: str | Path, check: bool = True, timeout: float = 300) -> str:
    """Runs a command with no stdin (a dpkg prompt would fail it); stdout+stderr as text."""
    p = subprocess.run(
        [str(c) for c in cmd],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout,
        env={**os.environ, "DEBIAN_FRONTEND": "noninteractive", "LC_ALL": "C.UTF-8"},
    )
    if check and p.returncode != 0:
        raise AssertionError(f"{' '.join(map(str, cmd))} exited {p.returncode}:\n{p.stdout}")
    return p.stdout


def tool(name: str) -> str:
    path = shutil.which(name)
    assert path, f"{name} is not installed (packaging/test-deb installs it)"
    return path


def package_status() -> str:
    """dpkg's status of beacon, "" when dpkg does not know it."""
    out = run("dpkg-query", "-W", "-f", "${Status}", "beacon", check=False)
    return "" if "no packages found" in out else out.strip()


def user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def group_exists(name: str) -> bool:
    try:
        grp.getgrnam(name)
    except KeyError:
        return False
    return True


def systemd_traces() -> list[Path]:
    """Unit symlinks and deb-systemd-helper state that mention beacon."""
    roots = [Path("/etc/systemd/system"), *Path("/var/lib/systemd").glob("deb-systemd-*")]
    return [p for root in roots for p in root.rglob("*beacon*")]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def load_jsonc(text: str) -> dict[str, object]:
    """The config format: JSON with whole-line // comments."""
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("//")]
    data = json.loads("\n".join(lines))
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="module", autouse=True)
def machine() -> Iterator[None]:
    """Refuses a machine that already has beacon; purges whatever the tests left."""
    assert os.geteuid() == 0, "installing a package needs root"
    assert Path(DEB).is_file(), f"no package at {DEB}"
    assert package_status() == "", f"beacon is already known to dpkg ({package_status()})"
    assert not user_exists("beacon"), "a beacon user exists already: this test would delete it"
    for path in (DATA, SPOOL, Path("/etc/beacon"), PREFIX):
        assert not path.exists(), f"{path} exists already: this test would delete it"
    try:
        yield
    finally:
        if package_status():
            run("dpkg", "--purge", "beacon", check=False)
        for path in (DATA, SPOOL, Path("/etc/beacon")):
            shutil.rmtree(path, ignore_errors=True)
        if user_exists("beacon"):
            run("userdel", "beacon", check=False)
        if group_exists("beacon"):
            run("groupdel", "beacon", check=False)


def test_lintian_is_clean() -> None:
    # Overrides (with their reasons) are in packaging/debian/lintian-overrides.
    out = run(tool("lintian"), "--fail-on", "error,warning", DEB)
    print(out)


def test_package_contents() -> None:
    files = run("dpkg-deb", "--contents", DEB)
    for path in [
        "./usr/bin/beacon",
        "./etc/beacon/config.json",
        "./lib/systemd/system/beacon.service",
        "./lib/systemd/system/beacon.socket",
        "./usr/share/man/man1/beacon.1.gz",
        "./usr/share/doc/beacon/changelog.Debian.gz",
        "./usr/share/doc/beacon/copyright",
        "./usr/lib/beacon/pyvenv.cfg",
    ]:
        assert f" {path}\n" in files or f" {path} -> " in files, path
    assert "/opt/" not in files
    assert ".pyc" not in files, "byte-code is compiled in postinst, not shipped"
    assert " root/root " in files and all(" root/root " in line for line in files.splitlines()), (
        "every file belongs to root"
    )
    control = run("dpkg-deb", "--field", DEB)
    assert "Package: beacon\n" in control
    assert "Architecture: amd64\n" in control
    depends = run("dpkg-deb", "--field", DEB, "Depends")
    assert "python3.11" in depends and "adduser" in depends and "libc6 (>= " in depends
    conffiles = run("dpkg-deb", "--info", DEB, "conffiles")
    assert conffiles.split() == ["/etc/beacon/config.json"]


def test_install() -> None:
    run("dpkg", "--install", DEB)
    assert package_status() == "install ok installed"
    user = pwd.getpwnam("beacon")
    assert user.pw_uid < 1000, "a system user"
    assert user.pw_shell in ("/usr/sbin/nologin", "/bin/false")
    # Installed, not enabled: `systemctl enable --now beacon.socket` is the administrator's call.
    assert not [p for p in systemd_traces() if p.is_symlink()], systemd_traces()
    assert grp.getgrgid(user.pw_gid).gr_name == "beacon"
    for path in (DATA, SPOOL):
        st = path.stat()
        assert (st.st_uid, st.st_gid) == (user.pw_uid, user.pw_gid), path
        assert st.st_mode & 0o7777 == 0o750, path
    assert list(PREFIX.rglob("__pycache__/*.pyc")), "postinst compiles the byte-code"
    version = run("/usr/bin/beacon", "--version").strip()
    deb_version = run("dpkg-deb", "--field", DEB, "Version").strip()
    assert version == f"beacon {deb_version.split('-')[0]}"


def test_check_config_accepts_the_installed_config() -> None:
    out = run("/usr/bin/beacon", "check-config", CONFIG)
    assert "ok (1 flavors)" in out
    cfg = load_jsonc(CONFIG.read_text())
    assert cfg["data_dir"] == str(DATA) and cfg["spool_dir"] == str(SPOOL)
    backends = cfg["backends"]
    assert isinstance(backends, dict)
    assert backends["file"]["enabled"] is True and backends["kafka"]["enabled"] is False


def test_systemd_analyze_verifies_the_units() -> None:
    out = run(tool("systemd-analyze"), "verify", *UNITS)
    # verify exits 0 on warnings too: nothing about our units may be reported.
    assert "beacon" not in out, out


def test_man_page_renders() -> None:
    out = run(tool("man"), "--warnings", "-l", "-Tutf8", "/usr/share/man/man1/beacon.1.gz")
    text = re.sub(".\b", "", out)  # overstrike bold/underline -> plain text
    assert "warning" not in text.lower(), text
    for words in ("SYNOPSIS", "check-config", "--version", "SIGTERM", "SIGHUP", CONFIG.name):
        assert words in text, words


def test_serves_as_the_beacon_user_into_var_lib_beacon() -> None:
    """The installed config on a test port, run as `beacon`: events land in /var/lib/beacon."""
    port, admin_port = free_port(), free_port()
    cfg = load_jsonc(CONFIG.read_text())
    cfg["listen"] = f"127.0.0.1:{port}"
    cfg["admin_listen"] = f"127.0.0.1:{admin_port}"
    workdir = Path(tempfile.mkdtemp(prefix="beacon-deb-"))
    try:
        workdir.chmod(0o755)
        # systemd's notification socket, as beacon.service (Type=notify) would have it.
        notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        notify.bind(str(workdir / "notify"))
        (workdir / "notify").chmod(0o666)
        notify.settimeout(10)
        config = workdir / "config.json"
        config.write_text(json.dumps(cfg, indent=2))
        config.chmod(0o644)
        out = run(
            "setpriv",
            "--reuid=beacon",
            "--regid=beacon",
            "--init-groups",
            "--",
            "/usr/bin/beacon",
            "check-config",
            config,
        )
        assert "ok" in out
        log_path = workdir / "beacon.log"
        # The server is this process's child itself (no runuser/su in between that would
        # SIGKILL it 2 s after passing on SIGTERM), in an environment like systemd's.
        with log_path.open("wb") as log:
            proc = subprocess.Popen(
                ["/usr/bin/beacon", "serve", "--config", str(config)],
                user="beacon",
                group="beacon",
                extra_groups=[],
                env={
                    "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
                    "LANG": "C.UTF-8",
                    "NOTIFY_SOCKET": str(workdir / "notify"),
                },
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd="/",
            )
        try:
            deadline = time.monotonic() + 30
            while True:
                assert proc.poll() is None, (
                    f"beacon exited {proc.returncode}:\n{log_path.read_text()}"
                )
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                    break
                except OSError:
                    assert time.monotonic() < deadline, log_path.read_text()
                    time.sleep(0.1)
            ps = run("ps", "-o", "user=,args=", "-p", str(proc.pid))
            assert ps.split()[0] == "beacon", f"the server runs as beacon: {ps}"
            assert_parser_build(proc.pid)
            marker = f"deb{os.getpid()}x{time.time_ns()}"
            dates = {datetime.datetime.now(datetime.UTC).date().isoformat()}
            for i in range(5):
                url = f"http://127.0.0.1:{port}/track?ev=view&id={i}&m={marker}"
                with urllib.request.urlopen(url, timeout=10) as resp:
                    assert resp.status == 200
                    assert resp.headers["Content-Type"] == "image/gif"
                    assert len(resp.read()) == 43
            dates.add(datetime.datetime.now(datetime.UTC).date().isoformat())
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
            try:
                status = proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
                raise
        log_text = log_path.read_text(errors="replace")
        assert status == 0, f"beacon exited {status} on SIGTERM:\n{log_text}"
        notifications = []
        notify.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            while True:
                notifications.append(notify.recv(4096).decode())
        notify.close()
        print("sd_notify:", notifications)
        if server_uses_sdnotify():
            assert "READY=1" in notifications[0].split("\n"), notifications
            assert any("STOPPING=1" in n.split("\n") for n in notifications), notifications
        events = []
        for date in sorted(dates):
            path = DATA / "default" / f"{date}.jsonl"
            if path.exists():
                assert path.stat().st_uid == pwd.getpwnam("beacon").pw_uid
                for line in path.read_text().splitlines():
                    event = json.loads(line)
                    if event["params"].get("m") == marker:
                        events.append(event)
        assert [e["params"]["id"] for e in events] == [str(i) for i in range(5)], log_text
        assert all(e["flavor"] == "default" for e in events)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def cpu_has_sse42() -> bool:
    lines = Path("/proc/cpuinfo").read_text().splitlines()
    return "sse4_2" in next(line for line in lines if line.startswith("flags")).split()


def has_pcmpestri(path: Path) -> bool:
    out = run(tool("objdump"), "-d", "--no-show-raw-insn", path)
    return "pcmpestri" in out


def assert_parser_build(pid: int) -> None:
    """The running server parses with the package's SSE4.2 build of httptools on a CPU that
    has SSE4.2 (python/beacon/parser_variant.py), with PyPI's baseline wheel elsewhere."""
    maps = Path(f"/proc/{pid}/maps").read_text().split()
    parsers = {Path(p) for p in maps if "/httptools/parser/parser." in p}
    assert len(parsers) == 1, parsers
    parser = parsers.pop()
    variant = PREFIX / "lib/python3.11/sse4.2/httptools/parser"
    baseline = PREFIX / "lib/python3.11/site-packages/httptools/parser"
    assert parser.parent == (variant if cpu_has_sse42() else baseline), parser
    assert has_pcmpestri(parser) == cpu_has_sse42(), parser
    assert not has_pcmpestri(next(baseline.glob("parser.*.so"))), "the wheel runs on any CPU"


def server_uses_sdnotify() -> bool:
    """Whether the installed server sends READY=1/STOPPING=1 (wired into the runtime
    separately; from then on this test insists on both)."""
    servers = list(PREFIX.glob("lib/python3.*/site-packages/beacon/runtime/run.py"))
    return bool(servers) and "sdnotify" in servers[0].read_text()


def _change_config() -> str:
    text = CONFIG.read_text()
    if LOCAL_CHANGE not in text:
        text = f"{LOCAL_CHANGE}\n{text}"
        CONFIG.write_text(text)
    return text


def _assert_config_kept(text: str, dpkg_output: str) -> None:
    assert CONFIG.read_text() == text, "the changed conffile was replaced"
    assert not list(CONFIG.parent.glob("config.json.dpkg-*")), "dpkg set a copy aside"
    assert "Configuration file" not in dpkg_output, f"dpkg asked about the conffile:\n{dpkg_output}"
    assert "ok (1 flavors)" in run("/usr/bin/beacon", "check-config", CONFIG)


def test_reinstall_keeps_a_changed_conffile() -> None:
    text = _change_config()
    out = run("dpkg", "--install", DEB)
    assert package_status() == "install ok installed"
    _assert_config_kept(text, out)


def test_upgrade_keeps_a_changed_conffile(tmp_path: Path) -> None:
    """The same package relabelled one Debian revision up: a real upgrade, with the package's
    conffile unchanged and the local one changed, keeps the local one without asking."""
    tree = tmp_path / "tree"
    run("dpkg-deb", "--raw-extract", DEB, tree)
    control = tree / "DEBIAN" / "control"
    version = run("dpkg-deb", "--field", DEB, "Version").strip()
    newer = f"{version}+upgradetest1"
    control.write_text(control.read_text().replace(f"Version: {version}\n", f"Version: {newer}\n"))
    upgrade = tmp_path / "beacon-upgrade.deb"
    run("dpkg-deb", "--root-owner-group", "--build", tree, upgrade)
    text = _change_config()
    events_before = sorted(p.name for p in (DATA / "default").iterdir())
    out = run("dpkg", "--install", upgrade)
    assert run("dpkg-query", "-W", "-f", "${Version}", "beacon") == newer
    _assert_config_kept(text, out)
    assert sorted(p.name for p in (DATA / "default").iterdir()) == events_before
    # And back to the real package (a downgrade), for the remove and purge steps.
    run("dpkg", "--install", DEB)
    _assert_config_kept(text, out)


def test_remove_keeps_config_user_and_data() -> None:
    run("dpkg", "--remove", "beacon")
    assert package_status() == "deinstall ok config-files"
    assert LOCAL_CHANGE in CONFIG.read_text()
    assert list((DATA / "default").glob("*.jsonl")), "the events stay"
    assert SPOOL.is_dir()
    assert user_exists("beacon") and group_exists("beacon")
    assert not Path("/usr/bin/beacon").exists()
    assert not PREFIX.exists(), f"left in {PREFIX}: {list(PREFIX.rglob('*'))[:10]}"
    for unit in UNITS:
        assert not unit.exists(), unit


def test_purge_leaves_nothing_behind() -> None:
    run("dpkg", "--purge", "beacon")
    assert package_status() == ""
    for path in (Path("/etc/beacon"), DATA, SPOOL, PREFIX, Path("/opt/beacon")):
        assert not path.exists(), path
    assert not Path("/usr/bin/beacon").exists()
    for unit in UNITS:
        assert not unit.exists(), unit
    assert not user_exists("beacon")
    assert not group_exists("beacon")
    assert not systemd_traces(), systemd_traces()
