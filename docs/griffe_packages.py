"""Griffe extension: read worker/ and web/ as notifier.worker and notifier.web.

pyproject's package-dir installs the three repository folders as one package; griffe finds
packages by folder, so without this the API reference would not know notifier.worker.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import griffe

REPO = Path(__file__).resolve().parent.parent
#: Subpackage name under notifier -> the repository folder it is installed from.
FOLDERS = {"worker": REPO / "worker", "web": REPO / "web"}


class InstalledLayout(griffe.Extension):
    """Attach worker/ and web/ to the notifier package the way setuptools installs them."""

    def on_package(self, *, pkg: griffe.Module, loader: griffe.GriffeLoader, **kwargs: Any) -> None:
        """Load each folder with notifier as its parent, so its paths and imports resolve."""
        if pkg.path != "notifier":
            return
        for name, folder in FOLDERS.items():
            # The loader's own recursive load (private, pinned by the lock): a parent given
            # here makes every module's path notifier.<name>.… from the start.
            module = loader._load_module(name, folder, submodules=True, parent=pkg)
            pkg.set_member(name, module)
