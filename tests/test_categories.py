import json

import pytest

from app.core.errors import CategoryTableError
from dvis_models.categories import CategoryTable, vipseg_categories


def test_vipseg_table_has_58_things_and_66_stuff():
    table = vipseg_categories()
    assert len(table) == 124
    assert len(table.things) == 58
    assert len(table.stuff) == 66
    assert [c.id for c in table] == list(range(124))


@pytest.mark.parametrize(
    "category_id, name, isthing, color",
    [
        (0, "wall", False, (120, 120, 120)),
        (6, "Playground_slide", False, (140, 140, 140)),
        (48, "car", True, (140, 140, 140)),
        (60, "person", True, None),
        (101, "Microwave_oven", True, None),
        (117, "Mobile_phone", True, None),
        (123, "train", True, (133, 255, 0)),
    ],
)
def test_known_entries(category_id, name, isthing, color):
    category = vipseg_categories()[category_id]
    assert category.name == name
    assert category.isthing is isthing
    if color is not None:
        assert category.color == color


def test_thing_ids_match_the_dataset_definition():
    expected = {2, 4, 8, 10, 41, 43, 44, *range(46, 53), 54, 55, 56, *range(60, 66), 72, 74, *range(76, 80),
                *range(82, 93), 95, 96, 97, *range(99, 103), *range(106, 110), *range(114, 119), 122, 123}
    assert {c.id for c in vipseg_categories().things} == expected


def test_round_trip_through_json():
    table = vipseg_categories()
    again = CategoryTable.from_json(json.loads(json.dumps(table.to_json())))
    assert again.to_json() == table.to_json()


def test_malformed_table_names_the_problem(tmp_path):
    path = tmp_path / "cats.json"
    path.write_text(json.dumps([{"id": 0, "name": "wall", "isthing": 0}]))
    with pytest.raises(CategoryTableError, match="entry 0 is malformed"):
        CategoryTable.load(path)
    path.write_text("{not json")
    with pytest.raises(CategoryTableError, match="not valid JSON"):
        CategoryTable.load(path)


def test_unknown_id_is_a_clear_error():
    with pytest.raises(CategoryTableError, match="Unknown category id 500"):
        vipseg_categories()[500]


def test_display_name_falls_back_to_the_id():
    table = vipseg_categories()
    assert table.name(table.by_name("person").id) == "person"
    assert table.name(999) == "999"
