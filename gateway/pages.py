"""What the browser pages the gateway serves itself (GraphiQL, Swagger UI) have in common."""

from __future__ import annotations

import base64
import hashlib
import pathlib
from importlib.resources.abc import Traversable


def same_origin_policy(boot_script: str) -> str:
    """A Content-Security-Policy that loads nothing from another origin.

    The page's one inline script is allowed by its hash; the UIs set inline styles at run time.
    """
    digest = base64.b64encode(hashlib.sha256(boot_script.encode()).digest()).decode()
    return "; ".join(
        (
            "default-src 'none'",
            f"script-src 'self' 'sha256-{digest}'",
            "style-src 'self' 'unsafe-inline'",
            "font-src 'self' data:",
            "img-src 'self' data:",
            "connect-src 'self'",
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'none'",
        )
    )


def installed_directory(folder: Traversable, distribution: str) -> pathlib.Path:
    """`folder` of an installed package as a real directory, which StaticFiles needs."""
    # A zipped install would give another Traversable.
    if not isinstance(folder, pathlib.Path) or not folder.is_dir():
        raise RuntimeError(f"{distribution} must be installed as files, not zipped")
    return folder
