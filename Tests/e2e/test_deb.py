"""The Debian packages (issue 22; packaging/deb, tools/build-deb.sh, `make deb`): what each holds, with which modes
and owners, its control fields and conffiles, the manual page, the copyright file, lintian, reproducibility, and the
package's life (install, upgrade with an edited conffile kept, remove, purge) run by the real dpkg and the real
maintainer scripts in a throwaway copy-on-write copy of this machine's root (no systemd runs there, as in an image
build). The life inside a booted image, with the service running, is the boot test's."""
import gzip
import hashlib
import io
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
import time

import pytest

pytestmark = pytest.mark.product

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
BUILD_DEB = os.path.join(ROOT, "tools/build-deb.sh")
DEB_DIR = os.environ.get("SLUICE_DEB_DIR") or os.path.join(ROOT, "build/deb")
DEBARCH = {"x86_64": "amd64", "aarch64": "arm64"}
PRODUCTS = {("x86_64", "openssl"): ("SLUICE_BIN", "build/x86_64/sluice"),
            ("aarch64", "openssl"): ("SLUICE_ARM_BIN", "build/aarch64/sluice"),
            ("x86_64", "mbedtls"): ("SLUICE_BIN_MBEDTLS", "build/x86_64-mbedtls/sluice"),
            ("aarch64", "mbedtls"): ("SLUICE_ARM_BIN_MBEDTLS", "build/aarch64-mbedtls/sluice")}

# every path of the package, with its type and mode (all root:root in the archive)
DIRS = ["etc", "etc/sluice", "lib", "lib/systemd", "lib/systemd/system", "usr", "usr/bin", "usr/lib",
        "usr/lib/sysusers.d", "usr/lib/tmpfiles.d", "usr/share", "usr/share/doc", "usr/share/doc/{pkg}",
        "usr/share/lintian", "usr/share/lintian/overrides", "usr/share/man", "usr/share/man/man8"]
FILES = {"usr/bin/sluice": 0o755, "etc/sluice/sluice.json": 0o644,
         "lib/systemd/system/sluice.service": 0o644, "lib/systemd/system/sluice-state-fallback.service": 0o644,
         "usr/lib/sysusers.d/sluice.conf": 0o644, "usr/lib/tmpfiles.d/sluice.conf": 0o644,
         "usr/share/doc/{pkg}/copyright": 0o644, "usr/share/doc/{pkg}/changelog.Debian.gz": 0o644,
         "usr/share/doc/{pkg}/operations.md": 0o644, "usr/share/doc/{pkg}/fstab.sluice": 0o644,
         "usr/share/man/man8/sluice.8.gz": 0o644, "usr/share/lintian/overrides/{pkg}": 0o644}
# installed as they are from image/ and docs/
VERBATIM = {"lib/systemd/system/sluice.service": "image/sluice.service",
            "lib/systemd/system/sluice-state-fallback.service": "image/sluice-state-fallback.service",
            "usr/lib/sysusers.d/sluice.conf": "image/sysusers.d/sluice.conf",
            "usr/lib/tmpfiles.d/sluice.conf": "image/tmpfiles.d/sluice.conf",
            "etc/sluice/sluice.json": "image/sluice.json",
            "usr/share/doc/{pkg}/operations.md": "docs/operations.md",
            "usr/share/doc/{pkg}/fstab.sluice": "image/fstab.sluice"}
# the libraries linked into each flavour, as the copyright file must name them
LIBRARIES = {"openssl": ["libssh2", "libmicrohttpd", "swift", "libgcc", "glibc", "openssl", "zlib"],
             "mbedtls": ["libssh2", "libmicrohttpd", "swift", "libgcc", "musl", "mbedtls"]}


def binary(arch, crypto):
    var, default = PRODUCTS[(arch, crypto)]
    return os.environ.get(var) or os.path.join(ROOT, default)


def source_version():
    with open(os.path.join(ROOT, "Sources/Appliance/Support/BuildInfo.swift")) as f:
        return re.search(r'public static let version = "([^"]+)"', f.read()).group(1)


def package_name(crypto):
    return "sluice-small" if crypto == "mbedtls" else "sluice"


def build(arch, crypto, outdir, version=None):
    """tools/build-deb.sh, under umask 077 and a TMPDIR of its own (the package must not depend on either)."""
    args = [BUILD_DEB, arch, binary(arch, crypto), str(outdir)] + ([version] if version else [])
    tmp = os.path.join(str(outdir), ".tmp")
    os.makedirs(tmp, exist_ok=True)
    r = subprocess.run(["sh", "-c", 'umask 077 && exec "$@"', "sh"] + args, capture_output=True, text=True,
                       timeout=120, env=dict(os.environ, CRYPTO=crypto, TMPDIR=tmp))
    assert r.returncode == 0, r.stderr
    path = r.stdout.strip()
    assert os.path.isfile(path) and r.stdout.count("\n") == 1, r.stdout
    return path


def members(deb, part):
    """The control (`-e`) or data (`--fsys-tarfile`) archive of a package, as {name: (TarInfo, bytes)}."""
    if part == "data":
        raw = subprocess.run(["dpkg-deb", "--fsys-tarfile", deb], capture_output=True, check=True).stdout
    else:
        raw = subprocess.run(["dpkg-deb", "--ctrl-tarfile", deb], capture_output=True, check=True).stdout
    out = {}
    with tarfile.open(fileobj=io.BytesIO(raw)) as t:
        for m in t.getmembers():
            name = m.name[2:] if m.name.startswith("./") else m.name
            out[name.rstrip("/")] = (m, t.extractfile(m).read() if m.isfile() else None)
    return out


def field(deb, name):
    return subprocess.run(["dpkg-deb", "-f", deb, name], capture_output=True, text=True, check=True).stdout.strip()


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """Every package this machine's products make, built here: {(arch, crypto): path}. The openssl ones must exist
    (make deb's); the mbedtls ones are built when their binaries were."""
    out = tmp_path_factory.mktemp("deb")
    found = {}
    for (arch, crypto) in PRODUCTS:
        if os.path.exists(binary(arch, crypto)):
            found[(arch, crypto)] = build(arch, crypto, out)
        else:
            assert crypto == "mbedtls", f"{binary(arch, crypto)} missing: run make static aarch64"
    return found


@pytest.fixture(scope="module")
def x86_version():
    """The version the x86_64 binary reports, the package's upstream version."""
    out = subprocess.run([binary("x86_64", "openssl"), "version"], capture_output=True, text=True, check=True).stdout
    first = out.splitlines()[0].split()
    assert first[0] == "sluice" and first[2] == "x86_64-unknown-linux-gnu", out
    return first[1]


# (1) make deb's packages --------------------------------------------------------------------------------------------

def test_make_deb_made_both_architectures_reproducibly(built, x86_version):
    """build/deb holds make deb's packages for both targets, byte for byte what the same sources and binaries build
    again here, at another time, under another umask and TMPDIR (fixed time stamps, owners, modes and order)."""
    assert x86_version == source_version()
    for arch in ("x86_64", "aarch64"):
        name = f"sluice_{x86_version}-1_{DEBARCH[arch]}.deb"
        ours = built[(arch, "openssl")]
        assert os.path.basename(ours) == name
        theirs = os.path.join(DEB_DIR, name)
        assert os.path.exists(theirs), f"{theirs} missing: run make deb"
        with open(ours, "rb") as a, open(theirs, "rb") as b:
            assert a.read() == b.read(), f"{theirs} differs from a build of the current sources: run make deb"
        print(f"\n{name}: {os.path.getsize(theirs)} bytes")


# (2) contents -------------------------------------------------------------------------------------------------------

def test_contents_modes_owners(built):
    for (arch, crypto), deb in built.items():
        pkg = package_name(crypto)
        data = members(deb, "data")
        epoch = data["usr/bin/sluice"][0].mtime
        expected = {d.format(pkg=pkg) for d in DIRS} | {f.format(pkg=pkg) for f in FILES} | {"etc/sluice/keys", "."}
        assert set(data) == expected, (deb, sorted(set(data) ^ expected))
        for name, (m, _) in data.items():
            assert (m.uid, m.gid, m.uname, m.gname) == (0, 0, "root", "root"), (deb, name)
            assert m.mtime == epoch, (deb, name)
            if name in {f.format(pkg=pkg) for f in FILES}:
                assert m.isfile(), (deb, name)
            elif name == "etc/sluice/keys":
                assert m.isdir() and m.mode == 0o750, (deb, name, oct(m.mode))
            else:
                assert m.isdir() and m.mode == 0o755, (deb, name, oct(m.mode))
        for pattern, mode in FILES.items():
            assert data[pattern.format(pkg=pkg)][0].mode == mode, (deb, pattern)
        with open(binary(arch, crypto), "rb") as f:
            assert data["usr/bin/sluice"][1] == f.read(), deb
        for pattern, source in VERBATIM.items():
            with open(os.path.join(ROOT, source), "rb") as f:
                assert data[pattern.format(pkg=pkg)][1] == f.read(), (deb, pattern)
        info = subprocess.run(["file", "-b", "-"], input=data["usr/bin/sluice"][1], capture_output=True).stdout
        assert b"statically linked" in info, info


def test_control_fields_and_relations(built, x86_version):
    for (arch, crypto), deb in built.items():
        pkg = package_name(crypto)
        version = f"{x86_version}-1"
        assert os.path.basename(deb) == f"{pkg}_{version}_{DEBARCH[arch]}.deb"
        assert field(deb, "Package") == pkg and field(deb, "Version") == version
        assert field(deb, "Architecture") == DEBARCH[arch]
        # a static binary: no shared-library dependencies; the scripts need systemd-sysusers, else adduser
        assert field(deb, "Depends") == "systemd | adduser"
        assert field(deb, "Pre-Depends") == "" and field(deb, "Recommends") == ""
        assert field(deb, "Section") == "net" and field(deb, "Priority") == "optional"
        other = "sluice" if crypto == "mbedtls" else "sluice-small"
        assert field(deb, "Conflicts") == other and field(deb, "Replaces") == other
        if crypto == "mbedtls":
            assert field(deb, "Provides") == f"sluice (= {version})" and field(deb, "Source") == "sluice"
        else:
            assert field(deb, "Provides") == ""
        data = members(deb, "data")
        kib = sum((m.size + 1023) // 1024 if m.isfile() else 1 for n, (m, _) in data.items() if n != ".")
        assert int(field(deb, "Installed-Size")) == kib


def test_conffiles_md5sums_and_maintainer_scripts(built):
    for (arch, crypto), deb in built.items():
        control = members(deb, "control")
        assert set(control) == {".", "control", "conffiles", "md5sums", "postinst", "prerm", "postrm"}, deb
        assert control["conffiles"][1] == b"/etc/sluice/sluice.json\n"
        data = members(deb, "data")
        sums = dict(reversed(line.split("  ", 1)) for line in control["md5sums"][1].decode().splitlines())
        regular = {n for n, (m, _) in data.items() if m.isfile()}
        assert set(sums) == regular - {"etc/sluice/sluice.json"}, deb    # conffiles are dpkg's to checksum
        for name, digest in sums.items():
            assert hashlib.md5(data[name][1]).hexdigest() == digest, (deb, name)
        for script in ("postinst", "prerm", "postrm"):
            m, text = control[script]
            assert m.mode == 0o755, (deb, script)
            with open(os.path.join(ROOT, "packaging/deb", script), "rb") as f:
                assert text == f.read()
            assert text.startswith(b"#!/bin/sh\n") and b"\nset -e\n" in text, script
            r = subprocess.run(["dash", "-n"], input=text, capture_output=True)
            assert r.returncode == 0, (script, r.stderr)
            if shutil.which("checkbashisms"):      # lintian checks bashisms too, below
                r = subprocess.run(["checkbashisms", os.path.join(ROOT, "packaging/deb", script)],
                                   capture_output=True, text=True)
                assert r.returncode == 0, r.stderr


# (3) documentation --------------------------------------------------------------------------------------------------

def test_manual_page_renders_and_covers_every_command(built, tmp_path, x86_version):
    data = members(built[("x86_64", "openssl")], "data")
    page = tmp_path / "sluice.8"
    page.write_bytes(gzip.decompress(data["usr/share/man/man8/sluice.8.gz"][1]))
    raw = data["usr/share/man/man8/sluice.8.gz"][1]
    assert raw[4:8] == b"\0\0\0\0" and not raw[3] & 0x08, "gzip -n: no name, no time stamp"
    env = dict(os.environ, LC_ALL="C.UTF-8", MANWIDTH="80")
    # as lintian renders it: every warning of groff and man counts
    r = subprocess.run(["man", "--warnings", "-E", "UTF-8", "-l", "-Tutf8", "-Z", str(page)], capture_output=True,
                       text=True, env=env, timeout=60)
    assert r.returncode == 0 and r.stderr == "", r.stderr
    r = subprocess.run(["groff", "-man", "-Tutf8", "-ww", "-z", str(page)], capture_output=True, text=True,
                       env=env, timeout=60)
    assert r.returncode == 0 and r.stderr == "", r.stderr
    text = subprocess.run(["man", "-l", str(page)], capture_output=True, text=True, env=env, check=True).stdout
    text = re.sub(".\b", "", text)
    for section in ("NAME", "SYNOPSIS", "DESCRIPTION", "COMMANDS", "OPTIONS", "SIGNALS", "EXIT STATUS",
                    "ENVIRONMENT", "FILES", "SEE ALSO"):
        assert re.search(rf"^{section}$", text, re.M), section
    assert f"Sluice {x86_version}" in text and "@" not in text.replace("@users", "")
    # every command and option the binary's usage names, in the page's synopsis
    usage = subprocess.run([binary("x86_64", "openssl"), "help"], capture_output=True, text=True, check=True).stdout
    synopsis = text.split("SYNOPSIS", 1)[1].split("DESCRIPTION", 1)[0]
    commands = re.findall(r"sluice ([a-z-]+)", usage)
    assert {"serve", "token", "check", "probe", "hash-password", "version"} <= set(commands), usage
    flat = lambda s: " ".join(s.replace("< ", "<").split()).lower()
    for line in usage.splitlines():
        line = line.replace("usage:", "").strip()
        if line:
            assert flat(line) in flat(synopsis), line
    for command in commands:
        assert re.search(rf"^       {command}\b", text, re.M), f"COMMANDS does not describe {command}"
    for option in sorted(set(re.findall(r"--[a-z]+", usage))):
        assert re.search(rf"^       {option}\b", text, re.M), f"OPTIONS does not describe {option}"
    for signal in ("SIGTERM", "SIGHUP"):
        assert signal in text
    for code in ("0", "1", "2"):
        assert re.search(rf"^       {code}  ", text, re.M), f"EXIT STATUS {code}"
    for path in ("/etc/sluice/sluice.json", "/etc/sluice/keys/", "/var/lib/sluice/", "/usr/share/doc/sluice/operations.md"):
        assert path in text, path


def test_copyright_is_machine_readable_and_names_every_linked_library(built):
    for (arch, crypto), deb in built.items():
        pkg = package_name(crypto)
        data = members(deb, "data")
        text = data[f"usr/share/doc/{pkg}/copyright"][1].decode()
        paragraphs = [p for p in text.split("\n\n") if p.strip()]
        assert paragraphs[0].startswith("Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/")
        files = {}
        standalone = set()
        for p in paragraphs[1:]:
            head = dict(re.findall(r"^([A-Za-z-]+): ?(.*)$", p, re.M))
            if "Files" in head:
                files[head["Files"]] = head["License"]
                if re.search(r"^License: .*\n ", p, re.M):       # with its text right there
                    standalone.add(head["License"])
            else:
                assert list(head)[0] == "License", p
                standalone.add(head["License"])
        for short in files.values():
            for name in re.split(r" or | and ", short):
                assert name in standalone, (deb, name)
        for library in LIBRARIES[crypto]:
            assert f"static/{library}/*" in files, (deb, library)
        # and no library the flavour does not link (the openssl one carried mbedTLS too, once)
        named = {f.split("/")[1] for f in files if f.startswith("static/")}
        assert named == set(LIBRARIES[crypto]), (deb, sorted(named))
        assert files["*"] == "Sluice"
        changelog = gzip.decompress(data[f"usr/share/doc/{pkg}/changelog.Debian.gz"][1]).decode()
        assert changelog.startswith(f"sluice ({field(deb, 'Version')}) ")


def test_lintian_clean(built):
    """No error or warning; every override carries its reason in packaging/deb/lintian-overrides."""
    assert shutil.which("lintian"), "lintian missing (tools/deps.sh host installs it)"
    r = subprocess.run(["lintian", "--fail-on", "error,warning", "-EvIL", "+pedantic", "--tag-display-limit", "0"]
                       + list(built.values()), capture_output=True, text=True, timeout=300)
    tags = [l for l in r.stdout.splitlines() if re.match(r"^[EWIPXO]: ", l)]
    print("\nlintian:\n" + "\n".join(tags or ["(nothing)"]))
    assert r.returncode == 0 and not [l for l in tags if l[0] in "EW"], r.stdout + r.stderr
    # each group of overrides opens with the comment that gives its reason
    with open(os.path.join(ROOT, "packaging/deb/lintian-overrides")) as f:
        groups = [g.splitlines() for g in f.read().split("\n\n")]
    overrides = [line for g in groups for line in g if not line.startswith("#")]
    assert overrides
    for group in groups:
        if any(not line.startswith("#") for line in group):
            assert group[0].startswith("#") and group[-1][0] != "#", group
    print("overridden, each with its reason in packaging/deb/lintian-overrides:\n" + "\n".join(overrides))


def newer(version):
    major, minor, patch = version.split(".")
    return f"{major}.{minor}.{int(patch) + 1}"


@pytest.fixture(scope="module")
def upgrade(tmp_path_factory, x86_version):
    """A newer build of the amd64 package: VERSION without a revision (build-deb adds "-1")."""
    return build("x86_64", "openssl", tmp_path_factory.mktemp("upgrade"), version=newer(x86_version))


def test_version_override_for_an_upgrade(built, upgrade, tmp_path, x86_version):
    """VERSION makes a newer build: in the file name, the control file and the changelog's top entry."""
    version = newer(x86_version) + "-1"
    assert os.path.basename(upgrade) == f"sluice_{version}_amd64.deb"
    assert field(upgrade, "Version") == version
    r = subprocess.run(["dpkg", "--compare-versions", version, "gt", field(built[("x86_64", "openssl")], "Version")])
    assert r.returncode == 0
    changelog = gzip.decompress(members(upgrade, "data")["usr/share/doc/sluice/changelog.Debian.gz"][1]).decode()
    assert changelog.startswith(f"sluice ({version}) ") and f"sluice ({x86_version}-1) " in changelog
    # refused: a binary of the other architecture, a dynamic one, an unknown architecture, the other flavour
    for crypto, bad in (("openssl", ["aarch64", binary("x86_64", "openssl")]), ("openssl", ["x86_64", "/bin/sh"]),
                        ("openssl", ["riscv64", "/bin/sh"]), ("mbedtls", ["x86_64", binary("x86_64", "openssl")]),
                        ("openssl", ["x86_64", binary("x86_64", "mbedtls")])):
        if not os.path.exists(bad[1]):
            continue
        r = subprocess.run([BUILD_DEB] + bad + [str(tmp_path)], capture_output=True, text=True, timeout=60,
                           env=dict(os.environ, CRYPTO=crypto))
        assert r.returncode != 0 and r.stdout == "" and "build-deb:" in r.stderr, (crypto, bad)
        assert os.listdir(tmp_path) == [], (crypto, bad)


# (4) the package's life, by dpkg, in a throwaway copy of this machine's root ----------------------------------------

class ThrowawayRoot:
    """An overlay of / with a tmpfs on top, in a mount namespace of its own (gone with its holder process): dpkg and
    the maintainer scripts run for real in a chroot of it, and nothing reaches the real root. /run is empty there,
    so no systemd is running, as in an image build."""

    def __init__(self):
        self.base = tempfile.mkdtemp(prefix="sluice-deb-root-")
        self.holder = subprocess.Popen(["unshare", "-m", "--propagation", "private", "sleep", "600"])
        deadline = time.monotonic() + 10
        mine = os.readlink("/proc/self/ns/mnt")
        while not self._ready(mine):
            assert time.monotonic() < deadline, "unshare did not start"
            time.sleep(0.02)
        b = self.base
        self.root = f"{b}/m"
        r = self.run(f"mount -t tmpfs tmpfs {b} && mkdir {b}/u {b}/w {b}/m && "
                     f"mount -t overlay overlay -o lowerdir=/,upperdir={b}/u,workdir={b}/w {b}/m && "
                     f"mount -t proc proc {b}/m/proc && mount --rbind /dev {b}/m/dev && "
                     f"mount -t tmpfs tmpfs {b}/m/run && mount -t tmpfs tmpfs {b}/m/tmp", chroot=False)
        if r.returncode != 0:
            self.close()
            pytest.skip(f"no overlay of / here: {r.stderr.strip()}")

    def _ready(self, mine):
        try:
            with open(f"/proc/{self.holder.pid}/comm") as f:
                return f.read().strip() == "sleep" and os.readlink(f"/proc/{self.holder.pid}/ns/mnt") != mine
        except OSError:
            return False

    def run(self, script, chroot=True):
        cmd = ["nsenter", "-t", str(self.holder.pid), "-m", "--"] + (["chroot", self.root] if chroot else [])
        return subprocess.run(cmd + ["sh", "-c", script], capture_output=True, text=True, timeout=120)

    def ok(self, script):
        r = self.run(script)
        assert r.returncode == 0, f"{script}\n{r.stdout}\n{r.stderr}"
        return r.stdout

    def put(self, path):
        """A host file into the chroot's /tmp; its path there."""
        assert self.run(f"cp {path} {self.root}/tmp/", chroot=False).returncode == 0
        return "/tmp/" + os.path.basename(path)

    def close(self):
        self.holder.kill()
        self.holder.wait()
        os.rmdir(self.base)


@pytest.fixture
def throwaway_root():
    if os.geteuid() != 0 or not shutil.which("unshare") or not shutil.which("nsenter"):
        pytest.skip("needs root, unshare and nsenter")
    root = ThrowawayRoot()
    yield root
    root.close()


def state(root):
    """What the package's life is about, as seen inside the chroot."""
    r = root.run("dpkg-query -W -f='${Status} ${Version}' sluice sluice-small 2>/dev/null; echo; "
                 "getent passwd sluice; getent group sluice; "
                 "stat -c '%n %a %U:%G' /etc/sluice/keys /var/lib/sluice 2>/dev/null; "
                 "dpkg-statoverride --list /etc/sluice/keys; "
                 "ls -l /etc/systemd/system/multi-user.target.wants/sluice.service /etc/systemd/system/sluice.service "
                 "2>/dev/null | sed 's/.* \\(\\/etc\\)/\\1/'; true")
    return r.stdout


def test_install_upgrade_remove_purge(built, upgrade, x86_version, throwaway_root):
    root = throwaway_root
    v1 = root.put(built[("x86_64", "openssl")])
    v2 = root.put(upgrade)
    version2 = newer(x86_version) + "-1"
    assert root.run("getent passwd sluice").returncode == 2, "the user exists before the package"

    # install: the user and group, the state folder, the keys folder's group, the unit enabled; nothing started
    # (no systemd runs), and dpkg succeeds
    root.ok(f"dpkg -i {v1}")
    s = state(root)
    assert f"install ok installed {x86_version}-1" in s
    assert re.search(r"^sluice:x:\d+:\d+:Sluice SSH tunnel appliance:/var/lib/sluice:/usr/sbin/nologin$", s, re.M), s
    assert "/etc/sluice/keys 750 root:sluice" in s and "/var/lib/sluice 700 sluice:sluice" in s, s
    assert "root sluice 750 /etc/sluice/keys" in s, s
    assert "/etc/systemd/system/multi-user.target.wants/sluice.service -> /lib/systemd/system/sluice.service" in s, s
    assert root.ok("dpkg --verify sluice") == ""              # md5sums and conffiles as dpkg checks them
    assert root.ok("runuser -u sluice -- sluice check").startswith("ok: /etc/sluice/sluice.json: ")
    assert root.ok("sluice version").startswith(f"sluice {x86_version} ")
    # the state a running box has, and an operator's edits
    token = root.ok("runuser -u sluice -- sluice token --user u-admin").strip()
    assert token.count(".") == 2
    secret = root.ok("cat /var/lib/sluice/jwt_secret")
    root.ok("sed -i 's/\"sseKeepaliveSeconds\": 30/\"sseKeepaliveSeconds\": 15/' /etc/sluice/sluice.json && "
            "install -m 0640 -g sluice /dev/null /etc/sluice/keys/edge_ed25519")
    edited = root.ok("cat /etc/sluice/sluice.json")
    assert '"sseKeepaliveSeconds": 15' in edited

    # upgrade: the edited conffile kept without a question, the state and the user too
    uid = root.ok("id -u sluice")
    root.ok(f"dpkg -i {v2} </dev/null")
    s = state(root)
    assert f"install ok installed {version2}" in s, s
    assert root.ok("cat /etc/sluice/sluice.json") == edited
    assert root.ok("cat /var/lib/sluice/jwt_secret") == secret and root.ok("id -u sluice") == uid
    assert "/etc/sluice/keys 750 root:sluice" in s and "root sluice 750 /etc/sluice/keys" in s, s
    assert root.ok("zcat /usr/share/doc/sluice/changelog.Debian.gz").startswith(f"sluice ({version2})")

    # remove: the program goes; configuration, keys, state and user stay; the unit is masked, its enablement kept
    root.ok("dpkg -r sluice")
    s = state(root)
    assert f"deinstall ok config-files {version2}" in s, s
    assert root.run("test -e /usr/bin/sluice").returncode == 1
    assert root.ok("cat /etc/sluice/sluice.json") == edited
    assert root.ok("cat /var/lib/sluice/jwt_secret") == secret
    assert root.run("test -f /etc/sluice/keys/edge_ed25519").returncode == 0
    assert "sluice:x:" in s and "/etc/systemd/system/sluice.service -> /dev/null" in s, s

    # purge: the state, the user and group, the statoverride, the enablement and the conffile go; the operator's
    # key file stays (dpkg leaves a folder that is not empty)
    root.ok("dpkg -P sluice")
    s = state(root)
    assert "sluice" not in s.replace("/etc/sluice/keys", ""), s
    assert root.run("test -e /var/lib/sluice").returncode == 1
    assert root.run("test -e /etc/sluice/sluice.json").returncode == 1
    assert root.run("test -f /etc/sluice/keys/edge_ed25519").returncode == 0
    assert root.run("ls /var/lib/systemd/deb-systemd-helper-enabled | grep -q sluice").returncode == 1


def test_small_build_replaces_the_default_one(built, throwaway_root):
    """sluice-small over sluice (and back) swaps the program and keeps the configuration, state and user."""
    if ("x86_64", "mbedtls") not in built:
        pytest.skip("no x86_64 mbedtls product (make static CRYPTO=mbedtls)")
    root = throwaway_root
    default, small = root.put(built[("x86_64", "openssl")]), root.put(built[("x86_64", "mbedtls")])
    root.ok(f"dpkg -i {default}")
    root.ok("runuser -u sluice -- sluice token --user u-admin")
    secret = root.ok("cat /var/lib/sluice/jwt_secret")
    root.ok(f"dpkg -i {small} </dev/null")
    s = state(root)
    status = root.ok("dpkg-query -W -f='${Package} ${Status}\\n' sluice sluice-small 2>/dev/null || true")
    assert "sluice-small install ok installed" in status and "sluice install ok installed" not in status, status
    assert "x86_64-unknown-linux-musl" in root.ok("sluice version")
    assert root.ok("cat /var/lib/sluice/jwt_secret") == secret and "root sluice 750 /etc/sluice/keys" in s, s
    root.ok(f"dpkg -i {default} </dev/null")
    assert "x86_64-unknown-linux-gnu" in root.ok("sluice version")
    assert root.ok("cat /var/lib/sluice/jwt_secret") == secret
