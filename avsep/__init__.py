"""avsep: audio-visual music source separation in the style of The Sound of Pixels."""

__version__ = "0.1.0"
