"""avsep: audio-visual music source separation in the style of The Sound of Pixels."""

__version__ = "0.1.0"

# Model API, imported on first use so that `import avsep` (and `avsep --help`) stays light.
_LAZY = {"create_model": "avsep.models", "list_models": "avsep.models",
         "load_checkpoint": "avsep.checkpoint", "save_checkpoint": "avsep.checkpoint"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'avsep' has no attribute {name!r}")
