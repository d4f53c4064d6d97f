"""The catalog of model cards. Cards are TOML files in ``edgezoo/zoo/cards``, validated on load."""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from pathlib import Path

from edgezoo.errors import NotFoundError, SchemaError
from edgezoo.schemas import _strict
from edgezoo.schemas.card import Card

CARDS_DIR = Path(str(resources.files("edgezoo.zoo") / "cards"))


def _card_files() -> dict[str, Path]:
    return {p.stem: p for p in sorted(CARDS_DIR.glob("*.toml"))}


@lru_cache(maxsize=None)
def load_card_file(path: Path) -> Card:
    card = _strict.load(Card, _strict.read_toml(path), source=str(path))
    if card.id != path.stem:
        raise SchemaError(f"{path}: key 'id' is {card.id!r} but the file is named {path.stem!r}.toml")
    return card


def list_cards() -> list[Card]:
    return [load_card_file(p) for p in _card_files().values()]


def get_card(model_id: str) -> Card:
    files = _card_files()
    if model_id not in files:
        raise NotFoundError("model", model_id, sorted(files))
    return load_card_file(files[model_id])
