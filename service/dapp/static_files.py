"""The built example dApp (DAPP_DIR) at /app/, same origin as the API: no CORS, one CSP.

Only files whose real path lies inside the folder are served. Litestar (2.25) keeps a
request's path inside the folder as written, but follows a symlink in it wherever it
points (its `resolve_symlinks` concerns the configured folder alone), so a link left in
a build folder would publish what it points at: the file system below refuses it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from litestar import Router
from litestar.file_system import BaseLocalFileSystem
from litestar.static_files import create_static_files_router
from litestar.types.file_types import FileInfo


class ContainedFileSystem(BaseLocalFileSystem):
    """The local file system, as far as `root` reaches: anything whose resolved path
    leaves it is not there."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    def _inside(self, path: Any) -> None:
        if not Path(path).resolve().is_relative_to(self.root):
            raise FileNotFoundError(path)

    async def info(self, path: Any, **kwargs: Any) -> FileInfo:
        self._inside(path)
        return await super().info(path, **kwargs)

    async def open(self, file: Any, mode: str, buffering: int = -1) -> Any:
        self._inside(file)
        return await super().open(file, mode, buffering)


def example_dapp(folder: Path) -> Router:
    return create_static_files_router(
        path="/app",
        directories=[folder],
        file_system=ContainedFileSystem(folder),
        html_mode=True,
        include_in_schema=False,
    )
