# SPDX-License-Identifier: GPL-2.0
"""The Debian packages as an operator installs them (make test-install).

Runs in the test VM on a throw-away writable root (tests/vm/run
--writable-root): dpkg -i of both packages from `make deb`, DKMS building
hsp.ko for the running kernel, modprobe, the *installed* qwatch, and the
exporter's command line exactly as qwatch-exporter.service runs it: parsed
from the installed unit and /etc/default/qwatch, as an unprivileged user
holding only the unit's capabilities. The oracles are the kernel's own
listings (ss, /proc/net/hsp) and dpkg's and DKMS's records. Last, dpkg
--purge must leave no file of either package and no module behind.
"""

import glob
import json
import os
import re
import shlex
import socket
import subprocess

import pytest

from lib import REPO, hsp
from lib.cmd import run, wait_until
from lib.kernel import ss_listener
from lib.qwatch import metric_value, scrape

DEB_DIR = os.path.join(REPO, "build", "deb")
UNIT = "/lib/systemd/system/qwatch-exporter.service"
DEFAULTS = "/etc/default/qwatch"
QWATCH = "/usr/sbin/qwatch"
KVER = os.uname().release
TARGET_KVERS = run([os.path.join(REPO, "tests", "vm", "kver")]).stdout.split()
# tests/vm/kver lists the series oldest first, 6.12 after 6.1.
BUILT_KVERS = sorted({KVER, TARGET_KVERS[-1]})
PARANOID = "/proc/sys/kernel/perf_event_paranoid"
# The dynamic user's stand-in: unprivileged, no supplementary groups.
UNPRIVILEGED = ["--reuid=nobody", "--regid=nogroup", "--clear-groups"]


def the_package(pattern):
    found = glob.glob(os.path.join(DEB_DIR, pattern))
    assert len(found) == 1, f"expected one {pattern} in {DEB_DIR} (make deb), found {found}"
    return found[0]


def installed(package):
    proc = run(["dpkg-query", "-W", "-f", "${db:Status-Abbrev}", package], check=False)
    return proc.stdout.startswith("ii")


def unit_setting(name):
    """The value of @name= in the installed unit (the last one, as systemd)."""
    with open(UNIT) as f:
        values = re.findall(rf"^{name}=(.*)$", f.read(), re.MULTILINE)
    assert values, f"{UNIT} has no {name}="
    return values[-1].strip()


def service_environment():
    """The service's variables: Environment=, then EnvironmentFile= over it."""
    env = dict(word.split("=", 1) for word in shlex.split(unit_setting("Environment")))
    path = unit_setting("EnvironmentFile").lstrip("-")
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith("#"):
                key, value = line.split("=", 1)
                env[key] = " ".join(shlex.split(value))
    return env


def service_command():
    """ExecStart= with ${VAR} as one word and $VAR split at whitespace, as
    systemd expands them."""
    env = service_environment()
    argv = []
    for word in shlex.split(unit_setting("ExecStart")):
        whole = re.fullmatch(r"\$\{(\w+)\}", word)
        split = re.fullmatch(r"\$(\w+)", word)
        if whole:
            argv.append(env.get(whole.group(1), ""))
        elif split:
            argv.extend(env.get(split.group(1), "").split())
        else:
            argv.append(word)
    return argv


def unit_capabilities():
    """AmbientCapabilities=, which must equal CapabilityBoundingSet=, as
    setpriv names them."""
    ambient = set(unit_setting("AmbientCapabilities").split())
    assert ambient == set(unit_setting("CapabilityBoundingSet").split())
    return sorted(c.removeprefix("CAP_").lower() for c in ambient)


def as_service(argv, caps=None):
    """@argv as an unprivileged user holding only @caps (default: the unit's)."""
    caps = unit_capabilities() if caps is None else caps
    held = ",".join(["-all"] + [f"+{c}" for c in caps])
    prefix = ["setpriv", *UNPRIVILEGED, f"--inh-caps={held}", f"--ambient-caps={held}",
              f"--bounding-set={held}"]
    if unit_setting("NoNewPrivileges") == "yes":
        prefix.append("--no-new-privs")
    return prefix + argv


def metrics_port(argv):
    address = argv[argv.index("--metrics") + 1]
    return int(address.rsplit(":", 1)[1])


@pytest.fixture(scope="module")
def packages():
    """Both packages installed; purged at the end if a test left them."""
    debs = [the_package("hsp-dkms_*_all.deb"), the_package("qwatch_*_amd64.deb")]
    run(["dpkg", "-i", *debs], timeout=3600)
    yield debs
    if hsp.loaded():
        hsp.unload()
    if installed("qwatch") or installed("hsp-dkms"):
        run(["dpkg", "--purge", "qwatch", "hsp-dkms"], timeout=600)


@pytest.fixture(scope="module")
def module_loaded(packages):
    """hsp loaded by name, from what DKMS installed."""
    if not hsp.loaded():
        run(["modprobe", "hsp"])
    yield
    if hsp.loaded():
        hsp.unload()


@pytest.fixture
def listeners(module_loaded):
    """A TCP and an HSP listener on loopback: their ports."""
    with socket.socket() as tcp, hsp.hsp_socket(None) as hsp_listener:
        for sock in (tcp, hsp_listener):
            sock.bind(("127.0.0.1", 0))
            sock.listen(4)
        yield {"tcp": tcp.getsockname()[1], "hsp": hsp_listener.getsockname()[1]}


@pytest.fixture
def perf_event_paranoid():
    """Sets kernel.perf_event_paranoid for the test; the default comes back."""
    with open(PARANOID) as f:
        default = f.read()

    def set_to(value):
        with open(PARANOID, "w") as f:
            f.write(str(value))

    yield set_to
    set_to(default.strip())


def test_dkms_built_and_installed_hsp_for_the_running_and_newest_kernel(packages):
    """dpkg -i has DKMS build for the running kernel and the newest one
    installed: booted on the oldest target (make test-install), that is
    every target kernel."""
    status = run(["dkms", "status", "hsp"]).stdout
    for kver in BUILT_KVERS:
        assert re.search(rf"^hsp/[^,]+, {re.escape(kver)}, x86_64: installed$", status,
                         re.MULTILINE), f"{kver}: {status}"
        path = run(["modinfo", "-k", kver, "-F", "filename", "hsp"]).stdout.strip()
        assert path.startswith(f"/lib/modules/{kver}/updates/dkms/hsp.ko"), path
        vermagic = run(["modinfo", "-F", "vermagic", path]).stdout.split()
        assert vermagic[0] == kver, vermagic


def test_modprobe_loads_the_installed_module(packages):
    assert not hsp.loaded()
    command = run(["modprobe", "--show-depends", "hsp"]).stdout.split()
    assert command[0] == "insmod" and "/updates/dkms/" in command[1], command
    run(["modprobe", "hsp"])
    assert hsp.loaded()


def test_installed_qwatch_lists_the_kernels_listeners(listeners):
    lines = run([QWATCH, "--once", "--json"]).stdout.splitlines()
    seen = {(o["proto"], o["lport"]) for o in map(json.loads, lines)}
    # The kernel's own listings say these exist.
    assert ss_listener(None, listeners["tcp"])
    assert hsp.proc_listener(None, listeners["hsp"])
    assert {("tcp", listeners["tcp"]), ("hsp", listeners["hsp"])} <= seen, seen


@pytest.mark.parametrize("paranoid", [3, 2])
def test_exporter_as_the_service_runs_it(listeners, perf_event_paranoid, paranoid):
    """The unit's ExecStart, as nobody with only the unit's capabilities:
    /metrics lists both listeners. At Debian's perf_event_paranoid=3 HSP's
    kprobes cannot attach without CAP_SYS_ADMIN and qwatch says so; at 2
    they attach."""
    perf_event_paranoid(paranoid)
    argv = service_command()
    assert argv[0] == QWATCH and "--quiet" in argv, argv
    port = metrics_port(argv)
    proc = subprocess.Popen(as_service(argv), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        def listed():
            assert proc.poll() is None, f"the exporter exited: {proc.communicate()}"
            try:
                text = scrape(port)
            except OSError:
                return None
            return text if all(
                metric_value(text, "qwatch_accept_queue_max", proto=proto,
                             lport=str(listeners[proto])) == 4
                for proto in ("tcp", "hsp")) else None

        wait_until(listed, timeout=120, what="both listeners in the exporter's /metrics")
    finally:
        proc.terminate()
        stdout, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 0, stderr
    assert stdout == "", "--quiet printed on stdout"
    refusal = "perf_event_paranoid=3 refuses perf_event_open()"
    table = run(as_service([QWATCH, "--once"])).stdout
    [footer] = [line for line in table.splitlines() if "watching" in line]
    if paranoid == 3:
        assert refusal in stderr, stderr
        assert footer.endswith("watching tcp, hsp (probes not attached: listeners only); "
                               "probes: fentry"), table
    else:
        assert stderr == "", stderr
        assert footer.endswith("watching tcp, hsp; probes: fentry"), table


def test_each_capability_of_the_unit_is_needed(listeners):
    caps = unit_capabilities()
    assert run(as_service([QWATCH, "--once"], caps)).returncode == 0
    for dropped in caps:
        proc = run(as_service([QWATCH, "--once"], [c for c in caps if c != dropped]), check=False)
        assert proc.returncode == 1, f"without {dropped}: {proc}"
        assert "not permitted" in proc.stderr, proc.stderr


def test_the_installed_unit_verifies(packages):
    run(["systemd-analyze", "verify", "--man=no", UNIT])


def test_purge_leaves_nothing(packages):
    files = run(["dpkg-query", "-L", "qwatch", "hsp-dkms"]).stdout.splitlines()
    files = [f for f in files if os.path.isfile(f)]
    assert QWATCH in files and DEFAULTS in files
    if hsp.loaded():
        hsp.unload()
    run(["dpkg", "--purge", "qwatch", "hsp-dkms"], timeout=600)
    assert not installed("qwatch") and not installed("hsp-dkms")
    assert not [f for f in files if os.path.lexists(f)]
    # deb-systemd-helper's enable link and state go with the purge.
    assert not glob.glob("/etc/systemd/system/*/qwatch-exporter.service")
    assert not glob.glob("/var/lib/systemd/deb-systemd-helper-enabled/**/qwatch-exporter*",
                         recursive=True)
    assert not os.path.exists("/var/lib/dkms/hsp")
    for kver in BUILT_KVERS:
        assert run(["modinfo", "-k", kver, "hsp"], check=False).returncode != 0
        assert not glob.glob(f"/lib/modules/{kver}/updates/**/hsp.ko*", recursive=True)
