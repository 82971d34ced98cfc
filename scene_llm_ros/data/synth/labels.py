"""Label-map rows (scannetv2-labels.combined.tsv layout) for the categories the generator uses."""
from __future__ import annotations

# (raw_category, category, nyu40id, nyuClass, nyu40class, eigen13id, eigen13class, mpcat40,
#  mpcat40index): the mapping ScanNet v2 publishes for these raw categories.
_ROWS = (
    ("wall", "wall", 1, "wall", "wall", 12, "Wall", "wall", 1),
    ("floor", "floor", 2, "floor", "floor", 5, "Floor", "floor", 2),
    ("ceiling", "ceiling", 22, "ceiling", "ceiling", 3, "Ceiling", "ceiling", 17),
    ("chair", "chair", 5, "chair", "chair", 4, "Chair", "chair", 3),
    ("office chair", "office chair", 5, "chair", "chair", 4, "Chair", "chair", 3),
    ("table", "table", 7, "table", "table", 10, "Table", "table", 5),
    ("coffee table", "coffee table", 7, "coffee table", "table", 10, "Table", "table", 5),
    ("desk", "desk", 14, "desk", "desk", 10, "Table", "table", 5),
    ("bed", "bed", 4, "bed", "bed", 1, "Bed", "bed", 11),
    ("sofa", "sofa", 6, "sofa", "sofa", 9, "Sofa", "sofa", 10),
    ("cabinet", "cabinet", 3, "cabinet", "cabinet", 6, "Furniture", "cabinet", 7),
    ("kitchen cabinet", "kitchen cabinet", 3, "cabinet", "cabinet", 6, "Furniture", "cabinet", 7),
    ("bookshelf", "bookshelf", 10, "bookshelf", "bookshelf", 6, "Furniture", "shelving", 31),
    ("toilet", "toilet", 33, "toilet", "toilet", 7, "Objects", "toilet", 18),
    ("sink", "sink", 34, "sink", "sink", 7, "Objects", "sink", 15),
    ("bathtub", "bathtub", 36, "bathtub", "bathtub", 7, "Objects", "bathtub", 25),
    ("refrigerator", "refrigerator", 24, "refrigerator", "refrigerator", 6, "Furniture",
     "appliances", 37),
    ("kitchen counter", "kitchen counter", 12, "counter", "counter", 6, "Furniture", "counter",
     26),
    ("nightstand", "nightstand", 32, "night stand", "night stand", 6, "Furniture",
     "chest_of_drawers", 13),
    ("dresser", "dresser", 17, "dresser", "dresser", 6, "Furniture", "chest_of_drawers", 13),
    ("lamp", "lamp", 35, "lamp", "lamp", 7, "Objects", "lighting", 28),
    ("table lamp", "lamp", 35, "lamp", "lamp", 7, "Objects", "lighting", 28),
    ("trash can", "trash can", 39, "garbage bin", "otherfurniture", 6, "Furniture", "objects", 39),
    ("tv stand", "tv stand", 39, "tv stand", "otherfurniture", 6, "Furniture", "furniture", 36),
    ("plant", "plant", 40, "plant", "otherprop", 7, "Objects", "plant", 14),
    ("door", "door", 8, "door", "door", 12, "Wall", "door", 4),
    ("window", "window", 9, "window", "window", 13, "Window", "window", 9),
    ("picture", "picture", 11, "picture", "picture", 8, "Picture", "picture", 6),
    ("curtain", "curtain", 16, "curtain", "curtain", 13, "Window", "curtain", 12),
    ("whiteboard", "whiteboard", 30, "whiteboard", "whiteboard", 7, "Objects", "board_panel", 35),
    ("monitor", "monitor", 40, "monitor", "otherprop", 7, "Objects", "objects", 39),
    ("tv", "tv", 25, "television", "television", 11, "TV", "tv_monitor", 22),
    ("pillow", "pillow", 18, "pillow", "pillow", 7, "Objects", "cushion", 8),
)


def label_rows(counts: dict[str, int] | None = None) -> list[dict[str, object]]:
    """Rows for :func:`scene_llm_ros.data.scannet.write_tsv`, one per raw category used.

    :param counts: instances per raw category in the generated data (the ``count`` column).
    """
    rows = []
    for raw, category, nyu40, nyu_class, nyu40_class, eigen, eigen_class, mpcat, mpcat_i in _ROWS:
        rows.append({"raw_category": raw, "category": category,
                     "count": (counts or {}).get(raw, 0), "nyu40id": nyu40,
                     "eigen13id": eigen, "nyuClass": nyu_class, "nyu40class": nyu40_class,
                     "eigen13class": eigen_class, "mpcat40": mpcat, "mpcat40index": mpcat_i})
    return rows


NYU40_OF = {row[0]: row[2] for row in _ROWS}
