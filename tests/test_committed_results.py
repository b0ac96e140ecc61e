"""The committed benchmark summaries rebuild, byte for byte, from the run files committed beside them: a
change to a summary function that would alter a published figure fails here, not in a reader's checkout."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
RESULTS = ROOT / "benchmarks/results"

#: (results folder, the command that rebuilds it (``{out}``: the copy of the folder; ``--out {out}`` appended where
#: the command does not name it), the files it must reproduce)
CASES = [
    ("paper", ["benchmarks/paper.py", "--summary-only"], ["summary.md", "curves.csv", "fig4.png", "fig6.png"]),
    ("dppo-5e5", ["benchmarks/paper.py", "--envs", "cacc-catchup", "ring-attenuation", "--algos", "dppo", "--steps",
                  "500000", "--summary-only"], ["summary.md", "curves.csv", "fig4.png"]),
    ("kappa-ablation/ring-attenuation", ["benchmarks/kappa_ablation.py", "--env", "ring-attenuation", "--kappas", "1",
                                         "2", "3", "4", "--seeds", "0", "1", "2", "--steps", "100000", "--summary-only",
                                         "--finished-only"], ["summary.md", "curves.csv"]),
    ("real-cities", ["benchmarks/real_cities.py", "--summary-only"], ["summary.md", "summary.csv", "overview.md"]),
    ("real-cities", ["benchmarks/real_cities.py", "--curves", "{out}/training"],
     ["learning.md", "learning.csv", "learning.png"]),
    ("peers", ["benchmarks/peers.py", "--summary-only"], ["summary.md"]),
    *[(f"sweep/{where}", ["-m", "gdmpo.cli", "sweep", "configs/cacc-catchup/dppo.yaml", "--seeds", "0", "1", "2",
                          "--steps", "100000", "--processes", "1"], ["summary.md", "curves.png"])
      for where in ("local", "two-nodes")],
    ("city-scale", ["benchmarks/city_scale.py", "--summary-only"], ["city_scale.md"]),
    ("dmpo-iteration", ["benchmarks/dmpo_iteration.py", "--compare", "{out}/iter-cpu.log", "{out}/iter-cuda.log",
                        "--out", "{out}/comparison.md"], ["comparison.md"]),
    *[(str(summary.parent.relative_to(RESULTS)), ["benchmarks/transfer.py", "--summary-only"], ["summary.md"])
      for summary in sorted(RESULTS.glob("transfer-*/**/summary.md"))],
]


@pytest.mark.slow
@pytest.mark.parametrize("folder, command, files", CASES, ids=[f"{case[0]}:{case[2][0]}" for case in CASES])
def test_committed_summaries_rebuild_byte_for_byte(tmp_path, folder, command, files):
    copy = tmp_path / "results"
    shutil.copytree(RESULTS / folder, copy)
    for name in files:
        (copy / name).unlink()  # nothing kept from the committed files: all of them made again
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg"}
    args = [part.format(out=copy) for part in command]
    if "--out" not in args:
        args += ["--out", str(copy)]
    done = subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    differ = [name for name in files if (copy / name).read_bytes() != (RESULTS / folder / name).read_bytes()]
    assert not differ, f"{folder}: {differ} rebuilt differently from the committed files"
