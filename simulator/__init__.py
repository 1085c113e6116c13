"""greengains-sim: a hardware-in-the-loop simulator and load tester for the GreenGains app.

The public surface is deliberately small; the machinery lives in the subpackages
(`simulator.sensors`, later `simulator.phone`, `simulator.backend`, ...).
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("greengains-sim")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
