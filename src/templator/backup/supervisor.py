"""Run one command so that it dies with us: `supervisor.py PARENT_PID [USER] -- ARGV...`.

A tool like `pg_dump -j N` forks workers of its own; Linux's parent-death signal would
reach only the direct child, so a SIGKILLed backup would leave workers writing. This
small program (standard library only, started as a script, not imported by the
package) leads a process group of its own, runs the command in that group, and when
its parent goes away — the parent pid changes because the orphan was re-parented — or
it receives SIGTERM/SIGINT, it SIGKILLs the whole group, itself included. With USER
the command runs as that account (pgBackRest as the owner of the data folder) while the
supervisor keeps the rights it needs to kill it.
"""

import os
import pwd
import signal
import sys
import threading
import time


def _kill_group(*_: object) -> None:
    try:
        os.killpg(0, signal.SIGKILL)
    finally:
        os._exit(137)


def _watch_parent(parent: int) -> None:
    while True:
        if os.getppid() != parent:
            _kill_group()
        time.sleep(0.05)


def main() -> int:
    """Start the command in our group and wait for it, watching our parent."""
    parent = int(sys.argv[1])
    split = sys.argv.index("--")
    user = sys.argv[2] if split == 3 else None
    argv = sys.argv[split + 1 :]
    if os.getpgrp() != os.getpid():
        os.setpgid(0, 0)
    signal.signal(signal.SIGTERM, _kill_group)
    signal.signal(signal.SIGINT, _kill_group)
    if os.getppid() != parent:
        _kill_group()
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()
    pid = os.fork()
    if pid == 0:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        if user is not None:
            account = pwd.getpwnam(user)
            os.initgroups(user, account.pw_gid)
            os.setgid(account.pw_gid)
            os.setuid(account.pw_uid)
            os.chdir("/")
            os.environ["HOME"] = account.pw_dir
        try:
            os.execvp(argv[0], argv)
        except OSError as exc:
            sys.stderr.write(f"cannot run {argv[0]}: {exc.strerror}\n")
            os._exit(127)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


if __name__ == "__main__":
    sys.exit(main())
