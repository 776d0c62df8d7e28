"""``decidua batch`` replaces its two outputs as one unit, whatever stops it.

The results file is the commit point: it is removed before the new rejects file is renamed into place and comes
back last, so a results file is never beside the rejects of another run. The run's work folder (a hidden
``.NAME.xxxxxxxx.parts`` beside the output) goes on every exit: an exception, SIGINT, SIGTERM; after SIGKILL the
next run removes it. The runs below are real processes, held at a chosen point by a hook and then signalled.
"""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import polars as pl
import pytest

from decidua.adapters import batchio
from decidua.core.errors import InputError

FIRST = """case_id,age_years,pb_nk_percent,n_miscarriages
a,36,20,2
b,x,20,1
c,35,20,1
"""  # b is rejected
SECOND = """case_id,age_years,pb_nk_percent,n_miscarriages
p,36,20,2
q,37,150,1
r,38,20,1
s,39,20,1
"""  # q is rejected
CLEAN = """case_id,age_years,pb_nk_percent,n_miscarriages
z,36,20,2
"""  # nothing rejected

# Runs ``decidua batch`` with a hook that touches MARKER and sleeps at one point of the run:
#   chunk:  while the first chunk is being assessed (the work folder exists, nothing committed);
#   commit: right after the rejects file was renamed into place (the results not yet).
HOOKED = """
import os, sys, time
from pathlib import Path

marker, where = Path(sys.argv[1]), sys.argv[2]

def hold():
    marker.touch()
    time.sleep(120)

if where == "chunk":
    from decidua.adapters import batchio
    real_prepare = batchio.prepare
    def prepare(*args):
        hold()
        return real_prepare(*args)
    batchio.prepare = prepare
elif where == "commit":
    real_replace = os.replace
    def replace(src, dst, **kw):
        real_replace(src, dst, **kw)
        if str(dst).endswith(".rejects.parquet"):
            hold()
    os.replace = replace

from decidua.entrypoints.cli.main import main
sys.argv = ["decidua", *sys.argv[3:]]
main()
"""


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def _batch(*args: str) -> subprocess.CompletedProcess[str]:
    code = "from decidua.entrypoints.cli.main import main; main()"
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1"}
    return subprocess.run([sys.executable, "-c", code, "batch", *args], capture_output=True, text=True, env=env)


@contextmanager
def _held_run(tmp_path: Path, where: str, *args: str) -> Iterator[subprocess.Popen[str]]:
    """A ``decidua batch`` process held at ``where`` (see HOOKED); killed at the end if still running."""
    marker = tmp_path / f"held-{where}"
    marker.unlink(missing_ok=True)
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-c", HOOKED, str(marker), where, "batch", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        deadline = time.monotonic() + 60
        while not marker.exists():
            if proc.poll() is not None:
                _, err = proc.communicate()
                pytest.fail(f"the run ended before reaching {where!r}: {err}")
            assert time.monotonic() < deadline, f"the run never reached {where!r}"
            time.sleep(0.05)
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()


def _names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def _keys(path: Path) -> list[str]:
    return pl.read_parquet(path)["case_id"].to_list()


@pytest.fixture
def first_run(tmp_path: Path) -> Path:
    """out/res.parquet and its rejects, from FIRST."""
    out = tmp_path / "out" / "res.parquet"
    done = _batch(str(_write(tmp_path / "first.csv", FIRST)), "-o", str(out))
    assert done.returncode == 0, done.stderr
    assert (_keys(out), _keys(batchio.rejects_path(out))) == (["a", "c"], ["b"])
    return out


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
def test_a_signalled_run_removes_its_work_folder_and_leaves_the_earlier_outputs(
    tmp_path: Path, first_run: Path, sig: signal.Signals
) -> None:
    second = _write(tmp_path / "second.csv", SECOND)
    with _held_run(tmp_path, "chunk", str(second), "-o", str(first_run)) as proc:
        assert any(n.endswith(".parts") for n in _names(first_run.parent))  # the run is under way
        proc.send_signal(sig)
        proc.wait(timeout=30)
    assert proc.returncode == 128 + sig
    assert _names(first_run.parent) == ["res.parquet", "res.rejects.parquet"]
    assert (_keys(first_run), _keys(batchio.rejects_path(first_run))) == (["a", "c"], ["b"])


def test_a_run_killed_between_the_two_renames_never_leaves_results_beside_other_rejects(
    tmp_path: Path, first_run: Path
) -> None:
    second = _write(tmp_path / "second.csv", SECOND)
    rejects = batchio.rejects_path(first_run)
    with _held_run(tmp_path, "commit", str(second), "-o", str(first_run)) as proc:
        # held after the new rejects are in place: the old results must not be there to be read with them
        assert _keys(rejects) == ["q"]
        assert not first_run.exists()
        proc.kill()
        proc.wait(timeout=30)
    assert not first_run.exists()  # no results: visibly an unfinished run, not a wrong pair
    # the next run removes what the killed one left (its work folder) and writes both outputs
    done = _batch(str(second), "-o", str(first_run))
    assert done.returncode == 0, done.stderr
    assert _names(first_run.parent) == ["res.parquet", "res.rejects.parquet"]
    assert (_keys(first_run), _keys(rejects)) == (["p", "r", "s"], ["q"])


def test_the_next_run_removes_what_a_killed_run_left(tmp_path: Path, first_run: Path) -> None:
    second = _write(tmp_path / "second.csv", SECOND)
    with _held_run(tmp_path, "chunk", str(second), "-o", str(first_run)) as proc:
        proc.kill()  # SIGKILL: no handler runs
        proc.wait(timeout=30)
    left = [n for n in _names(first_run.parent) if n.endswith(".parts")]
    assert len(left) == 1
    (first_run.parent / f".{first_run.name}.abcd_123.part").write_bytes(b"PAR1 half")  # an older kind of leftover
    done = _batch(str(second), "-o", str(first_run))
    assert done.returncode == 0, done.stderr
    assert _names(first_run.parent) == ["res.parquet", "res.rejects.parquet"]
    assert (_keys(first_run), _keys(batchio.rejects_path(first_run))) == (["p", "r", "s"], ["q"])


def test_a_run_without_rejects_writes_an_empty_rejects_file(tmp_path: Path, first_run: Path) -> None:
    done = _batch(str(_write(tmp_path / "clean.csv", CLEAN)), "-o", str(first_run))
    assert done.returncode == 0, done.stderr
    assert _keys(first_run) == ["z"]
    rejects = pl.read_parquet(batchio.rejects_path(first_run))
    assert rejects.height == 0  # the earlier run's rejects are not left looking current
    assert rejects.columns == ["case_id", "reason"]


def test_a_live_run_keeps_its_work_folder_and_another_run_on_the_same_output_is_refused(
    tmp_path: Path,
) -> None:
    out = tmp_path / "res.csv"
    live = tmp_path / f".{out.name}.live_run.parts"
    live.mkdir()
    fd = os.open(live, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # what a running batch holds on its work folder
        with pytest.raises(InputError, match="another run is writing"):
            batchio.remove_leftovers(out)
        assert live.exists()
    finally:
        os.close(fd)
    batchio.remove_leftovers(out)  # its process is gone (the lock with it): a leftover
    assert not live.exists()


def test_leftovers_are_recognised_by_their_whole_name(tmp_path: Path) -> None:
    out = tmp_path / "res.parquet"
    keep = [
        tmp_path / ".res.parquet.notes.txt",
        tmp_path / ".res.parquet.too_long_1.part",
        tmp_path / ".other.parquet.abcd1234.part",
        tmp_path / "res.parquet.abcd1234.part",
    ]
    for path in keep:
        path.write_text("mine")
    stale = [tmp_path / ".res.parquet.abcd1234.part", tmp_path / ".res.rejects.parquet.x1y2z3w4.part"]
    for path in stale:
        path.write_text("left")
    (tmp_path / ".res.parquet.q9w8e7r6.parts").mkdir()
    batchio.remove_leftovers(out, batchio.rejects_path(out))
    assert _names(tmp_path) == sorted(p.name for p in keep)
