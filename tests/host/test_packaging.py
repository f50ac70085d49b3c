# SPDX-License-Identifier: GPL-2.0
"""`make deb` and `make install`/`make uninstall`: what the two Debian
packages and an installation hold, lintian's verdict on the packages, and
DKMS building hsp.ko from hsp-dkms for every target kernel."""

import lzma
import os
import re
import shutil
import subprocess

import pytest

from lib import REPO  # noqa: E402
DEB_DIR = os.path.join(REPO, "build", "deb")
# What `make deb` and these tests run, by the Debian package providing it
# (in the Makefile's DEPS; binutils through build-essential).
TOOLS = {"git": "git", "rsync": "rsync", "dpkg-buildpackage": "dpkg-dev", "dh": "debhelper",
         "dh_dkms": "dh-dkms", "lintian": "lintian", "dkms": "dkms", "nm": "binutils"}
UNIT = "qwatch-exporter.service"
INSTALLED_DOCS = ["README.md", "qwatch.rst", "handshake.rst", "hsp.rst", "testing.rst"]

# Stands in for deb-systemd-helper, deb-systemd-invoke and systemctl: logs
# each call; deb-systemd-helper answers as for a unit never installed
# before, whose was-enabled state defaults to true.
SYSTEMD_STUB = """#!/bin/sh
echo "${0##*/} $*" >> "$STUB_LOG"
case "$1 $2" in
"debian-installed "*) exit 1 ;;
esac
exit 0
"""


def make(*args, timeout=600):
    """make in the repository, outside any make that runs this test (no
    jobserver or variables of its own leak in)."""
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    return subprocess.run(["make", "-C", REPO, *args], capture_output=True, text=True,
                          timeout=timeout, env=env)


def run(*argv, **kwargs):
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=600, **kwargs)
    assert proc.returncode == 0, f"{' '.join(argv)}: status {proc.returncode}\n{proc.stdout}{proc.stderr}"
    return proc.stdout


def target_kernels():
    return run(os.path.join(REPO, "tests", "vm", "kver")).split()


def changelog_version():
    """The upstream version of debian/changelog, as dh_dkms -V takes it."""
    version = run("dpkg-parsechangelog", "-l", os.path.join(REPO, "debian", "changelog"),
                  "-S", "Version").strip()
    return re.sub(r"-[^-]*$", "", version)


def module_suffix(kver):
    """How KVER's own modules are compressed ("" or ".xz", ...): Kbuild's
    modules_install and DKMS name hsp.ko the same way."""
    with open(f"/lib/modules/{kver}/modules.dep") as f:
        return re.match(r"\S+\.ko(\.\w+)?:", f.readline()).group(1) or ""


def deb_paths(deb):
    """(files, directories) of @deb, as paths without the leading ".";
    dh_compress gzips a doc only above 4 kB, so docs are named without .gz."""
    files, dirs = set(), set()
    for line in run("dpkg-deb", "-c", deb).splitlines():
        path = line.split(None, 5)[5].split(" -> ")[0].removeprefix(".")
        if line.startswith("d"):
            dirs.add(path.rstrip("/") or "/")
        else:
            files.add(re.sub(r"^(/usr/share/doc/.*)\.gz$", r"\1", path))
    return files, dirs


def parents(paths):
    dirs = {"/"}
    for path in paths:
        while (path := os.path.dirname(path)) != "/":
            dirs.add(path)
    return dirs


def symbols(module):
    """nm's symbols of @module with their types and sizes, without addresses."""
    return sorted(re.sub(r"^[0-9a-f]{16} ", "", line) for line in run("nm", "-S", module).splitlines())


def tree(root):
    """The files (anything but a directory) under @root, relative to it."""
    found = set()
    for top, dirnames, filenames in os.walk(root):
        found.update(os.path.relpath(os.path.join(top, name), root) for name in filenames)
        found.update(os.path.relpath(os.path.join(top, name), root) for name in dirnames
                     if os.path.islink(os.path.join(top, name)))
    return found


def module_source_files():
    """kmod/'s files as `make deb` copies them: tracked and new ones."""
    listed = run("git", "ls-files", "--cached", "--others", "--exclude-standard", "kmod",
                 cwd=REPO).split()
    return {path.removeprefix("kmod/") for path in listed if os.path.exists(os.path.join(REPO, path))}


@pytest.fixture(scope="module")
def debs():
    """Builds the packages once: {"qwatch": deb, "hsp-dkms": deb, "changes":
    file, "buildinfo": file}."""
    missing = [f"{tool} (Debian package {package})" for tool, package in TOOLS.items()
               if not shutil.which(tool)]
    if missing:
        pytest.fail("missing " + ", ".join(missing) + "; `make deps` installs them")
    proc = make("deb", timeout=1800)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    version = changelog_version()
    built = {"qwatch": os.path.join(DEB_DIR, f"qwatch_{version}_amd64.deb"),
             "hsp-dkms": os.path.join(DEB_DIR, f"hsp-dkms_{version}_all.deb"),
             "changes": os.path.join(DEB_DIR, f"qwatch_{version}_amd64.changes"),
             "buildinfo": os.path.join(DEB_DIR, f"qwatch_{version}_amd64.buildinfo")}
    assert sorted(name for name in os.listdir(DEB_DIR) if name.endswith(".deb")) == \
        sorted(os.path.basename(built[package]) for package in ("qwatch", "hsp-dkms"))
    return built


def test_lintian__reports_no_error_for_either_package(debs):
    """The .changes names both packages and the .buildinfo; lintian checks
    them all. Overrides, each with its reason: debian/*.lintian-overrides."""
    with open(debs["changes"]) as f:
        listed = re.findall(r"^ [0-9a-f]{32} \d+ \S+ \S+ (\S+)$", f.read(), re.M)
    assert sorted(listed) == sorted(os.path.basename(debs[name])
                                    for name in ("hsp-dkms", "qwatch", "buildinfo"))
    proc = subprocess.run(["lintian", "--display-info", "--show-overrides", debs["changes"]],
                          capture_output=True, text=True, timeout=600)
    report = proc.stdout + proc.stderr
    assert not [line for line in proc.stdout.splitlines() if line.startswith("E:")], report
    assert proc.returncode == 0, report


def test_qwatch_package__holds_the_reader_its_service_and_docs(debs):
    files, dirs = deb_paths(debs["qwatch"])
    expected = {"/etc/default/qwatch", f"/lib/systemd/system/{UNIT}", "/usr/sbin/qwatch",
                "/usr/share/man/man8/qwatch.8.gz", "/usr/share/qwatch/qwatch.rules.yml",
                "/usr/share/qwatch/qwatch.schema.json", "/usr/share/lintian/overrides/qwatch",
                "/usr/share/doc/qwatch/changelog", "/usr/share/doc/qwatch/copyright",
                *(f"/usr/share/doc/qwatch/{doc}" for doc in INSTALLED_DOCS)}
    assert files == expected
    assert dirs == parents(expected)


def test_qwatch_package__defaults_are_a_conffile(debs):
    assert run("dpkg-deb", "-I", debs["qwatch"], "conffiles").split() == ["/etc/default/qwatch"]


def test_qwatch_package__first_install_enables_and_starts_the_exporter(debs, tmp_path):
    """The postinst of dh_installsystemd, run as dpkg runs it on a first
    install, with nothing but stubs on its PATH."""
    postinst = run("dpkg-deb", "-I", debs["qwatch"], "postinst")
    for command in ("deb-systemd-helper", "deb-systemd-invoke", "systemctl"):
        (tmp_path / command).write_text(SYSTEMD_STUB)
        (tmp_path / command).chmod(0o755)
    log = tmp_path / "log"
    run("/bin/sh", "-c", postinst, "postinst", "configure", "",
        env={"PATH": str(tmp_path), "STUB_LOG": str(log)})
    assert f"deb-systemd-helper enable {UNIT}" in log.read_text().splitlines(), postinst
    # Only with systemd running (/run/systemd/system): "start" on a first
    # install, "restart" on an upgrade.
    start = re.search(r"if \[ -d /run/systemd/system \]; then\n(.*?)\n\tfi\n", postinst, re.S)
    assert start, postinst
    assert '_dh_action=start' in start.group(1), postinst
    assert f"deb-systemd-invoke $_dh_action '{UNIT}'" in start.group(1), postinst


def test_hsp_dkms_package__holds_the_module_source_and_dkms_conf(debs):
    source = f"/usr/src/hsp-{changelog_version()}"
    files, dirs = deb_paths(debs["hsp-dkms"])
    expected = {"/usr/share/doc/hsp-dkms/changelog", "/usr/share/doc/hsp-dkms/copyright",
                f"{source}/dkms.conf", *(f"{source}/{path}" for path in module_source_files())}
    assert f"{source}/Kbuild" in expected
    assert files == expected
    assert dirs == parents(expected)


def test_dkms_conf__carries_the_changelog_version_and_the_module(debs, tmp_path):
    version = changelog_version()
    run("dpkg-deb", "-x", debs["hsp-dkms"], str(tmp_path))
    conf_path = tmp_path / "usr" / "src" / f"hsp-{version}" / "dkms.conf"
    assert conf_path.exists(), os.listdir(tmp_path / "usr" / "src")
    conf = conf_path.read_text()
    settings = dict(re.findall(r'^([A-Z_]+(?:\[\d+\])?)="([^"]*)"$', conf, re.M))
    exclusive = settings.pop("BUILD_EXCLUSIVE_KERNEL", None)
    assert settings == {"PACKAGE_NAME": "hsp", "PACKAGE_VERSION": version,
                        "BUILT_MODULE_NAME[0]": "hsp", "DEST_MODULE_LOCATION[0]": "/updates/dkms",
                        "AUTOINSTALL": "yes"}, conf
    # DKMS builds for every target kernel and for no series HSP cannot build on.
    assert exclusive, conf
    assert all(re.search(exclusive, kver) for kver in target_kernels()), exclusive
    assert not [kver for kver in ("6.16.0-1-amd64", "6.10.11-amd64", "5.10.0-30-amd64")
                if re.search(exclusive, kver)], exclusive


def test_dkms__builds_the_same_hsp_as_make_kmod_for_every_target_kernel(debs, tmp_path):
    """DKMS builds with make -C /lib/modules/KVER/build M=..., as `make kmod`
    does: Kbuild's probes of the kernel's headers must come out the same,
    and so must every symbol and its size. Everything DKMS writes (its tree,
    the signing key it makes) stays in @tmp_path."""
    proc = make("kmod")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    version = changelog_version()
    run("dpkg-deb", "-x", debs["hsp-dkms"], str(tmp_path / "root"))
    (tmp_path / "dkms").mkdir()
    trees = ["--sourcetree", str(tmp_path / "root" / "usr" / "src"),
             "--dkmstree", str(tmp_path / "dkms")]
    env = {**os.environ, "mok_signing_key": str(tmp_path / "mok.key"),
           "mok_certificate": str(tmp_path / "mok.pub")}
    run("dkms", "add", "-m", "hsp", "-v", version, *trees, env=env)
    for kver in target_kernels():
        run("dkms", "build", "-m", "hsp", "-v", version, "-k", kver, *trees, env=env)
        built = tmp_path / "dkms" / "hsp" / version / kver / os.uname().machine / "module" / \
            f"hsp.ko{module_suffix(kver)}"
        assert built.suffix in (".ko", ".xz"), built
        data = built.read_bytes()
        unpacked = tmp_path / f"hsp-{kver}.ko"
        unpacked.write_bytes(lzma.decompress(data) if built.suffix == ".xz" else data)
        made = os.path.join(REPO, "build", kver, "kmod", "hsp.ko")
        assert symbols(unpacked) == symbols(made), kver


def test_install_then_uninstall__leaves_no_file_behind(tmp_path):
    proc = make("install", f"DESTDIR={tmp_path}", "PREFIX=/usr")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    expected = {"etc/default/qwatch", f"lib/systemd/system/{UNIT}", "usr/sbin/qwatch",
                "usr/share/man/man8/qwatch.8", "usr/share/qwatch/qwatch.rules.yml",
                "usr/share/qwatch/qwatch.schema.json",
                *(f"usr/share/doc/qwatch/{doc}" for doc in INSTALLED_DOCS),
                *(f"lib/modules/{kver}/updates/hsp.ko{module_suffix(kver)}"
                  for kver in target_kernels())}
    assert tree(tmp_path) == expected
    with open(tmp_path / "lib" / "systemd" / "system" / UNIT) as installed, \
            open(os.path.join(REPO, "packaging", UNIT)) as packaged:
        assert installed.read() == packaged.read()
    proc = make("uninstall", f"DESTDIR={tmp_path}", "PREFIX=/usr")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert tree(tmp_path) == set()


def test_install_under_usr_local__the_unit_runs_the_installed_reader(tmp_path):
    proc = make("install", f"DESTDIR={tmp_path}", "NO_KMOD=1")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    with open(tmp_path / "usr" / "local" / "lib" / "systemd" / "system" / UNIT) as f:
        unit = f.read()
    assert re.findall(r"^ExecStart=(\S+)", unit, re.M) == ["/usr/local/sbin/qwatch"]
    assert re.findall(r"^EnvironmentFile=-?(\S+)", unit, re.M) == ["/etc/default/qwatch"]
    assert os.access(tmp_path / "usr" / "local" / "sbin" / "qwatch", os.X_OK)
    assert not (tmp_path / "lib").exists()


def test_edited_defaults__survive_install_and_uninstall(tmp_path):
    defaults = tmp_path / "etc" / "default" / "qwatch"
    defaults.parent.mkdir(parents=True)
    defaults.write_text("QWATCH_ADDRESS=:9999\n")
    for target in ("install", "uninstall"):
        proc = make(target, f"DESTDIR={tmp_path}", "PREFIX=/usr", "NO_KMOD=1")
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert defaults.read_text() == "QWATCH_ADDRESS=:9999\n", target
    assert tree(tmp_path) == {"etc/default/qwatch"}
