"""The example dApp at /app/ serves its own folder's files, and nothing a link in it
points at outside that folder."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from litestar.testing import AsyncTestClient

from service.app import create_app
from service.settings import Settings


async def test_app_serves_only_files_whose_real_path_is_inside_dapp_dir(
    tmp_path: Path, migrated_sqlite: str, settings_from_env: Callable[..., Settings]
) -> None:
    built = tmp_path / "dist"
    (built / "assets").mkdir(parents=True)
    (built / "index.html").write_text("<!doctype html><title>dApp</title>")
    (built / "assets" / "app.js").write_text("console.log('dApp')")
    (built / "alias.js").symlink_to(built / "assets" / "app.js")  # a link inside: fine
    outside = tmp_path / "private"
    outside.mkdir()
    (outside / "secret.txt").write_text("operator secret")
    (outside / "index.html").write_text("not the dApp")
    (built / "leak.txt").symlink_to(outside / "secret.txt")
    (built / "elsewhere").symlink_to(outside)
    (tmp_path / "current").symlink_to(built)  # DAPP_DIR itself may be a link

    settings = settings_from_env(DATABASE_URL=migrated_sqlite, DAPP_DIR=str(tmp_path / "current"))
    async with AsyncTestClient(app=create_app(settings)) as client:
        served = {
            path: await client.get(path)
            for path in (
                "/app/",
                "/app/assets/app.js",
                "/app/alias.js",
                "/app/leak.txt",
                "/app/elsewhere/secret.txt",
                "/app/elsewhere/",
                "/app/elsewhere",
            )
        }
    assert served["/app/"].text == "<!doctype html><title>dApp</title>"
    assert served["/app/assets/app.js"].text == served["/app/alias.js"].text
    for path in ("/app/leak.txt", "/app/elsewhere/secret.txt", "/app/elsewhere/", "/app/elsewhere"):
        assert served[path].status_code == 404, path
        assert "operator secret" not in served[path].text
        assert "not the dApp" not in served[path].text
