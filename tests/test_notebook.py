"""notebooks/localization.ipynb runs from a fresh clone (stand-in data, random model)."""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
import pytest
from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel
from nbclient import NotebookClient

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "localization.ipynb"


def _ensure_python3_kernel() -> None:
    """Register this interpreter's ipykernel as `python3` if no such kernel exists."""
    try:
        KernelSpecManager().get_kernel_spec("python3")
    except NoSuchKernel:
        from ipykernel.kernelspec import install

        install(prefix=sys.prefix, kernel_name="python3")


@pytest.mark.slow  # ~30 s: a kernel, a stand-in piece and three passes of a model
def test_localization_notebook_executes(tmp_path, monkeypatch):
    _ensure_python3_kernel()
    monkeypatch.setenv("AVSEP_WORKDIR", str(tmp_path))
    monkeypatch.setenv("AVSEP_DEVICE", "cpu")
    for name in ("AVSEP_CHECKPOINT", "AVSEP_VIDEO"):
        monkeypatch.delenv(name, raising=False)
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    client = NotebookClient(notebook, timeout=300, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}})
    client.execute()  # raises CellExecutionError with the traceback if a cell fails

    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) >= 2  # heatmaps + spectrograms figure, energy over time
    text = "".join(o.get("text", "") for o in outputs)
    assert "regions from urmp name" in text
    assert "accuracy" in text and "chance" in text and "cIoU@0.3" in text
    assert (tmp_path / "random-sop.pt").is_file()
    assert list((tmp_path / "urmp-tiny").glob("*/Vid_*.mp4"))
