"""The catalog of model cards. Cards are TOML files in ``edgezoo/zoo/cards``, validated on load.

``$EDGEZOO_CARDS`` adds folders of cards (separated by ``os.pathsep``): a team's private
catalog, with weights from its own URLs or registry distributions. An id that is already
in the catalog is refused rather than shadowed."""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from pathlib import Path

from edgezoo.errors import NotFoundError, SchemaError
from edgezoo.schemas import _strict
from edgezoo.schemas.card import Card

CARDS_DIR = Path(str(resources.files("edgezoo.zoo") / "cards"))


def card_dirs() -> list[Path]:
    import os

    extra = [Path(p) for p in os.environ.get("EDGEZOO_CARDS", "").split(os.pathsep) if p]
    for d in extra:
        if not d.is_dir():
            raise SchemaError(f"EDGEZOO_CARDS names {d}, which is not a folder", hint="point it at folders of card .toml files")
    return [CARDS_DIR, *extra]


def catalog_file(name: str, what: str = "file") -> Path:
    """A file shipped beside the cards of a private catalog ($EDGEZOO_CARDS folders, in order):
    fine-tuned weights, their label list, their data set."""
    if not name or "/" in name or "\\" in name or name.startswith("."):
        raise SchemaError(f"{what} {name!r} must be a plain file name beside the card")
    for d in card_dirs()[1:]:
        if (d / name).is_file():
            return d / name
    raise NotFoundError(what, name, [str(d) for d in card_dirs()[1:]] or ["(no EDGEZOO_CARDS folder is set)"])


def _card_files() -> dict[str, Path]:
    files: dict[str, Path] = {}
    for d in card_dirs():
        for p in sorted(d.glob("*.toml")):
            if p.stem in files:
                raise SchemaError(f"{p}: card id {p.stem!r} is already in the catalog ({files[p.stem]})",
                                  hint="give the card another id (ids are unique across EDGEZOO_CARDS)")
            files[p.stem] = p
    return files


@lru_cache(maxsize=None)
def load_card_file(path: Path) -> Card:
    card = _strict.load(Card, _strict.read_toml(path), source=str(path))
    if card.id != path.stem:
        raise SchemaError(f"{path}: key 'id' is {card.id!r} but the file is named {path.stem!r}.toml")
    return card


def list_cards() -> list[Card]:
    return [load_card_file(p) for p in _card_files().values()]


def split_ref(ref: str) -> tuple[str, str | None]:
    """``id@version`` -> (id, version); a bare id -> (id, None)."""
    model_id, sep, version = ref.partition("@")
    return model_id, (version if sep else None)


def get_card(ref: str) -> Card:
    """The card of ``id`` or ``id@version``; with a version, the card's ``default_version``
    is that version, so everything downstream (weights, bundle, manifest) uses it."""
    from dataclasses import replace

    model_id, version = split_ref(ref)
    files = _card_files()
    if model_id not in files:
        raise NotFoundError("model", model_id, sorted(files))
    card = load_card_file(files[model_id])
    if version is not None and version != card.default_version:
        card = replace(card, default_version=card.version(version).version)
    return card
