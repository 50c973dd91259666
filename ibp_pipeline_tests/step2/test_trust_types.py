"""Trust types from the published groupings, one rule at a time, on hand-made rows whose answers are known."""
from __future__ import annotations

import polars as pl
import pytest

from ibp_pipeline.step2_triple_aim.trust_types import classify, classify_row, comparison_type

ACUTE = "Acute and Acute & Community Trusts"


@pytest.mark.parametrize(("row", "expected", "source_has"), [
    # the staff survey gives the broad type, ERIC the acute band
    ({"nss_group": ACUTE, "eric_type": "ACUTE - SMALL"}, "acute_small", "ERIC 2019/20 band 'ACUTE - SMALL'"),
    ({"nss_group": "Mental Health & Learning Disability and Mental Health, Learning Disability & Community Trusts",
      "eric_type": "COMMUNITY"}, "mental_health", "staff survey 2024"),  # the newer survey wins over ERIC
    ({"nss_group": "Community Trusts"}, "community", "staff survey 2024"),
    ({"nss_group": "Ambulance Trusts"}, "ambulance", "staff survey 2024"),
    # Great Ormond Street: survey 'acute specialist', named for children; Alder Hey: survey 'acute', ERIC specialist
    ({"nss_group": "Acute Specialist Trusts", "eric_type": "ACUTE - SPECIALIST",
      "eric_name": "GREAT ORMOND STREET HOSPITAL FOR CHILDREN NHS FOUNDATION TRUST"}, "acute_specialist_children",
     "children's trust by name"),
    ({"nss_group": ACUTE, "eric_type": "ACUTE - SPECIALIST", "eric_name": "ALDER HEY CHILDRENS NHS FOUNDATION TRUST"},
     "acute_specialist_children", "children's trust by name"),
    ({"nss_group": "Acute Specialist Trusts", "org_name": "THE ROYAL MARSDEN NHS FOUNDATION TRUST"},
     "acute_specialist", "staff survey 2024"),
    ({"eric_type": "CARE TRUST"}, "mental_health", "ERIC 2019/20 type 'CARE TRUST'"),
    ({"nss_group": ACUTE}, "acute_unbanded", "no ERIC size band"),
    # a merged trust with no row of its own takes its predecessors' type; the largest band wins
    ({"type_predecessors": "X1, X2", "pred_eric_types": "ACUTE - MEDIUM|ACUTE - TEACHING"}, "acute_teaching",
     "predecessor trusts (X1, X2)"),
    ({"type_predecessors": "Y1, Y2, Y3", "pred_nss_groups": "Community Trusts|Community Trusts|Ambulance Trusts"},
     "community", "predecessor trusts (Y1, Y2, Y3): staff survey 2024"),
    # nothing published: ambulance from the staff mix, else other, said plainly
    ({"ambulance_share": 0.8}, "ambulance", "ambulance staff share 80%"),
    ({"ambulance_share": 0.1, "nss_group": "CSUs"}, "other", "no published type"),
])
def test_classify_row(row: dict, expected: str, source_has: str) -> None:
    kind, source = classify_row(row)
    assert kind == expected and source_has in source


def test_classify_frame_and_comparison_types() -> None:
    frame = classify(pl.DataFrame({"org_code": ["A", "B", "C"], "nss_group": [ACUTE, ACUTE, "Community Trusts"],
                                   "eric_type": ["ACUTE - TEACHING", "ACUTE - MULTI-SERVICE", None]}))
    assert frame.rows() == [
        ("A", "acute_teaching", "Acute teaching", "acute",
         "staff survey 2024 group 'Acute and Acute & Community Trusts'; ERIC 2019/20 band 'ACUTE - TEACHING'"),
        ("B", "acute_multi_service", "Acute multi-service (acute with community services)", "acute",
         "staff survey 2024 group 'Acute and Acute & Community Trusts'; ERIC 2019/20 band 'ACUTE - MULTI-SERVICE'"),
        ("C", "community", "Community", "community", "staff survey 2024 group 'Community Trusts'")]
    # every general acute band is ranked together; specialists and children's hospitals apart
    assert {comparison_type(t) for t in ("acute_teaching", "acute_small", "acute_unbanded")} == {"acute"}
    assert comparison_type("acute_specialist_children") == "acute_specialist_children"
