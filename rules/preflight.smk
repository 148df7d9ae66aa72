# Runs before `configfile:` so that a broken config.yaml is reported with its file and line, and so that this
# workflow's library (src/) is importable here and in every job (scripts, conda envs, cluster jobs inherit it).
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(workflow.basedir) / "src"))
# (PYTHONPATH is optional, so no `envvars:` assertion; the name sits in a constant for the linter's sake.)
_SRC, _PATHVAR = str(Path(workflow.basedir) / "src"), "PYTHONPATH"
if _SRC not in os.environ.get(_PATHVAR, "").split(os.pathsep):
    os.environ[_PATHVAR] = os.pathsep.join(
        filter(None, [_SRC, os.environ.get(_PATHVAR)])
    )

from biasdiff.config import read_yaml

# `configfile:` below reads config.yaml from the working directory.
if Path("config.yaml").is_file():
    read_yaml("config.yaml")


def _pass_interrupt_to_jobs():
    """Ctrl-C or `kill -INT` to Snakemake alone: Snakemake 9's local executor stops scheduling but lets running jobs
    finish (a training job ran on for minutes). Send them SIGTERM first -- the trainer then saves a checkpoint at its
    current step and stops -- and let Snakemake handle the interrupt as usual."""
    import signal
    import threading

    previous = signal.getsignal(signal.SIGINT)
    if (
        threading.current_thread() is not threading.main_thread()
        or previous is not signal.default_int_handler
    ):
        return  # an ignored SIGINT (background run) or a handler of someone else's stays as it is

    def handler(signum, frame):
        import psutil  # a dependency of Snakemake itself

        for process in psutil.Process().children(recursive=True):  # the running jobs
            try:
                process.terminate()
            except psutil.Error:
                pass
        previous(signum, frame)

    signal.signal(signal.SIGINT, handler)


_pass_interrupt_to_jobs()


def _advise_on_locks():
    """Snakemake's 'Directory cannot be locked' does not say whether `--unlock` is safe. It is when the lock was left
    by a run that no longer exists (a crash, a kill -9, a closed terminal): say which case this is, before Snakemake
    tries to lock."""
    locks = Path(".snakemake/locks")
    if not workflow.is_main_process or not locks.is_dir() or not any(locks.iterdir()):
        return  # jobs (cluster, subprocesses) run inside a locked run: nothing to advise there
    import psutil

    here, me = Path.cwd().resolve(), psutil.Process()
    mine = {me.pid, *(p.pid for p in me.parents())}
    others = []
    for process in psutil.process_iter(["pid", "cmdline", "cwd"]):
        try:
            cmd = " ".join(process.info["cmdline"] or [])
            cwd = process.info["cwd"]
        except psutil.Error:
            continue
        if (
            process.info["pid"] not in mine
            and "snakemake" in cmd
            and cwd
            and Path(cwd).resolve() == here
        ):
            others.append(process.info["pid"])
    if others:
        print(
            f"biasdiff: Snakemake (pid {', '.join(map(str, others))}) is running in {here}: wait for it to end; "
            "do not run --unlock while it runs",
            file=sys.stderr,
        )
    else:
        print(
            f"biasdiff: {locks} holds a lock but no Snakemake process runs in {here} (a crashed or killed run left "
            "it): `snakemake --unlock` is safe, then rerun (add --rerun-incomplete if asked)",
            file=sys.stderr,
        )


_advise_on_locks()
