"""Runs a command the way a read-only-root appliance would: in a private mount namespace where `/` and every other
mount (except /proc, /sys and /dev) is read-only, and only the given folders are writable (bind mounts of
themselves). Any write elsewhere fails with EROFS, loudly."""
import os
import shlex
import stat
import tempfile

from .sluice import command

SCRIPT = r"""set -e
awk '{print $2}' /proc/self/mounts | sort -u | while read -r m; do
  case "$m" in /proc|/proc/*|/sys|/sys/*|/dev|/dev/*) continue ;; esac
  mount -o remount,bind,ro "$m" 2>/dev/null || mount --bind -o remount,ro "$m"
done
for w in $SLUICE_WRITABLE; do mount --bind "$w" "$w"; mount -o remount,bind,rw "$w"; done
touch /.sluice-rofs-probe 2>/dev/null && { echo "readonly: / is still writable" >&2; exit 99; }
exec "$@"
"""


def wrapper(binary, writable):
    """An executable script that runs `binary` with its arguments on a read-only root, `writable` folders writable
    (an aarch64 binary through qemu, as `command` runs it)."""
    fd, path = tempfile.mkstemp(prefix="sluice-rofs-", suffix=".sh")
    with os.fdopen(fd, "w") as f:
        f.write("#!/bin/sh\n")
        f.write(f"export SLUICE_WRITABLE='{' '.join(writable)}'\n")
        f.write("exec unshare --mount --propagation private /bin/sh -c '" + SCRIPT.replace("'", "'\\''")
                + "' readonly " + " ".join(shlex.quote(a) for a in command(binary)) + ' "$@"\n')
    os.chmod(path, stat.S_IRWXU)
    return path
