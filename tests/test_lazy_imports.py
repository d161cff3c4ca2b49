"""The worker starts without the model libraries: scikit-learn (with scipy and pandas, ~200 MB
of RSS) and statsforecast load only when a model is trained or loaded, or a learned forecast
runs (issue 11's RSS target)."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("sklearn", "scipy", "pandas", "statsforecast")


def _imported_after(statement: str) -> set[str]:
    tops = "' '.join(sorted({m.split('.')[0] for m in sys.modules}))"
    code = f"import sys\n{statement}\nprint({tops})"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(out.stdout.split())


def test_the_worker_and_its_cli_import_no_model_library() -> None:
    loaded = _imported_after("import worker.app, worker.cli, worker.cli.worker")
    assert "worker" in loaded
    assert loaded.isdisjoint(HEAVY), sorted(loaded & set(HEAVY))


def test_training_a_model_imports_scikit_learn() -> None:
    # the other side: the lazy import is where the fitting happens
    loaded = _imported_after("from worker.models.deal import _classifier\n_classifier('logistic')")
    assert "sklearn" in loaded
