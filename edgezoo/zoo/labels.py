"""Label sets shipped with the package (one label a line)."""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

from edgezoo.errors import NotFoundError


@lru_cache(maxsize=None)
def load_labels(name: str) -> tuple[str, ...]:
    if name.endswith(".txt"):  # a private catalog's own list, beside its card
        from edgezoo.zoo.catalog import catalog_file

        return tuple(line for line in catalog_file(name, "label list").read_text(encoding="utf-8").splitlines() if line)
    path = resources.files("edgezoo.zoo") / "labels" / f"{name}.txt"
    if not path.is_file():
        raise NotFoundError("label set", name, sorted(p.name.removesuffix(".txt") for p in (resources.files("edgezoo.zoo") / "labels").iterdir()))
    return tuple(line for line in path.read_text(encoding="utf-8").splitlines() if line)
