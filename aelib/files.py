"""Where aelib keeps files: the repository folder, folders named by environment variables, and
writes that no reader sees half done."""

import os
import tempfile
from collections.abc import Callable
from pathlib import Path


def project_root() -> Path:
    """The repository folder (where ``pyproject.toml`` lives), or the working directory."""
    here = Path(__file__).resolve().parent.parent
    return here if (here / "pyproject.toml").exists() else Path.cwd()


def env_folder(env_var: str, default: str | None, given: str | os.PathLike | None = None) -> Path | None:
    """``given``, else ``$env_var``, else ``default`` (None: no folder). A relative variable or default is read against
    the repository, so ``make`` (run at the top) and a notebook (run in ``notebooks/``) find the same folder."""
    if given:
        return Path(given).expanduser()
    value = os.environ.get(env_var, "").strip() or default
    return project_root() / Path(value).expanduser() if value else None


def atomic_write(path: str | os.PathLike, write: Callable[[str], None]) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.stem, suffix=path.suffix + ".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; these files are shared like any other
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
