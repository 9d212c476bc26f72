"""The VIPSeg category table (124 classes) and small helpers around it, for both packages (plain Python, no torch).

Ids are VIPSeg json ids 0..123; the raw ``panomasks`` value of a category is ``id + 1``.
A model may carry its own table, so everything takes a ``CategoryTable`` instead of assuming VIPSeg;
where JSON entries are needed (a model's config, a dataset's JSON), ``to_json()`` gives them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from dvis_models.errors import CategoryTableError
from dvis_models.resources import VIPSEG_CATEGORIES_FILE


@dataclass(frozen=True)
class Category:
    id: int
    name: str
    isthing: bool
    color: tuple[int, int, int]

    def to_json(self) -> dict:
        return {"id": self.id, "name": self.name, "isthing": int(self.isthing), "color": list(self.color)}


class CategoryTable:
    """An ordered, id-indexed list of categories."""

    def __init__(self, categories: list[Category]):
        self._by_id = {c.id: c for c in categories}
        if len(self._by_id) != len(categories):
            raise CategoryTableError("The category table lists the same id twice; each id must appear once.")
        self.categories = sorted(categories, key=lambda c: c.id)

    def __len__(self) -> int:
        return len(self.categories)

    def __iter__(self):
        return iter(self.categories)

    def __contains__(self, category_id: int) -> bool:
        return category_id in self._by_id

    def __getitem__(self, category_id: int) -> Category:
        try:
            return self._by_id[category_id]
        except KeyError:
            raise CategoryTableError(f"Unknown category id {category_id}; valid ids are listed in the category "
                                     "table.") from None

    def name(self, category_id: int) -> str:
        """The category's name for display; the bare id when the table lacks it (a project made with another table)."""
        category = self._by_id.get(category_id)
        return category.name if category is not None else str(category_id)

    def by_name(self, name: str) -> Category:
        for category in self.categories:
            if category.name == name:
                return category
        raise CategoryTableError(f"No category named {name!r} (names are case-sensitive, e.g. 'Mobile_phone').")

    @property
    def things(self) -> list[Category]:
        return [c for c in self.categories if c.isthing]

    @property
    def stuff(self) -> list[Category]:
        return [c for c in self.categories if not c.isthing]

    def to_json(self) -> list[dict]:
        return [c.to_json() for c in self.categories]

    @classmethod
    def from_json(cls, entries: object, source: str = "category table") -> CategoryTable:
        if not isinstance(entries, list):
            raise CategoryTableError(f"{source}: expected a JSON list of categories.")
        categories = []
        for position, entry in enumerate(entries):
            try:
                color = tuple(int(v) for v in entry["color"])
                if len(color) != 3:
                    raise ValueError("color needs 3 values")
                categories.append(Category(int(entry["id"]), str(entry["name"]), bool(entry["isthing"]), color))
            except (KeyError, TypeError, ValueError) as error:
                raise CategoryTableError(
                    f"{source}: entry {position} is malformed ({error}); each entry needs id, name, isthing and color "
                    "[r, g, b]."
                ) from None
        return cls(categories)

    @classmethod
    def load(cls, path: Path) -> CategoryTable:
        try:
            entries = json.loads(Path(path).read_text(encoding="utf-8"))
        except OSError as error:
            raise CategoryTableError(f"Cannot read the category table {path}: {error.strerror}.") from None
        except json.JSONDecodeError as error:
            raise CategoryTableError(f"The category table {path} is not valid JSON ({error}).") from None
        return cls.from_json(entries, source=str(path))


@lru_cache(maxsize=1)
def vipseg_categories() -> CategoryTable:
    """The 124 VIPSeg categories exactly as ``panoVIPSeg_categories.json`` defines them."""
    return CategoryTable.load(VIPSEG_CATEGORIES_FILE)
