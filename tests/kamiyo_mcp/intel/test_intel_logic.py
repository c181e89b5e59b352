"""Pure logic: the risk formula and cross-source linking."""

from __future__ import annotations

from datetime import date

import pytest

from kamiyo_mcp.intel.linking import LinkRow, assign_groups
from kamiyo_mcp.intel.risk import ScoredIncident, level_for, percentile, score_incidents

TODAY = date(2026, 6, 1)


@pytest.mark.parametrize(
    ("score", "level"),
    [
        (0, "low"),
        (29, "low"),
        (30, "medium"),
        (59, "medium"),
        (60, "high"),
        (84, "high"),
        (85, "critical"),
        (100, "critical"),
    ],
)
def test_levels_follow_the_documented_thresholds(score: int, level: str) -> None:
    assert level_for(score) == level


def test_a_protocol_without_incidents_scores_zero() -> None:
    result = score_incidents([], today=TODAY, window_days=90)
    assert (result.score, result.level, result.last_exploit_date) == (0, "low", None)


def test_one_old_large_hack_is_low_to_medium_but_a_fresh_one_is_high() -> None:
    old = score_incidents([ScoredIncident(date(2022, 3, 23), 624e6)], today=TODAY, window_days=90)
    fresh = score_incidents([ScoredIncident(date(2026, 5, 20), 624e6)], today=TODAY, window_days=90)
    assert old.level in ("low", "medium") and fresh.level == "high"
    assert fresh.components["recency"] == 100.0 and old.components["frequency"] == 0.0


def test_repeated_recent_incidents_reach_critical() -> None:
    hacks = [ScoredIncident(date(2026, 5, d), 50e6) for d in (1, 10, 20)]
    result = score_incidents(hacks, today=TODAY, window_days=90)
    assert result.level == "critical"
    assert result.components["repeat"] == 80.0


def test_incidents_after_today_are_ignored() -> None:
    result = score_incidents([ScoredIncident(date(2027, 1, 1), 1e9)], today=TODAY, window_days=90)
    assert result.exploit_count == 0 and result.score == 0


def test_severity_is_log_scaled_between_ten_thousand_and_a_billion_dollars() -> None:
    small = score_incidents([ScoredIncident(date(2020, 1, 1), 10_000)], today=TODAY, window_days=90)
    huge = score_incidents([ScoredIncident(date(2020, 1, 1), 5e9)], today=TODAY, window_days=90)
    assert small.components["severity"] == 0.0 and huge.components["severity"] == 100.0


def test_percentile_counts_peers_at_or_below() -> None:
    assert percentile(50, [10, 50, 90, 100]) == 50.0
    assert percentile(5, []) == 0.0


def _row(
    ident: str, source: str, day: str, key: str, amount: float | None = None, related: tuple[str, ...] = ()
) -> LinkRow:
    return LinkRow(ident, source, day, key, amount, related)


def test_reports_of_one_incident_share_a_group_with_defillama_canonical() -> None:
    groups = assign_groups(
        [
            _row("defihacklabs:a", "defihacklabs", "2023-03-13", "euler", 200e6),
            _row("blocksec:65", "blocksec", "2023-03-14", "euler", 200e6),
            _row("defillama:b", "defillama", "2023-03-13", "euler", 197e6),
        ]
    )
    assert {g.group_id for g in groups.values()} == {"defillama:b"}
    assert [i for i, g in groups.items() if g.is_canonical] == ["defillama:b"]


def test_two_reports_of_the_same_source_are_never_merged() -> None:
    groups = assign_groups(
        [
            _row("defillama:mirror", "defillama", "2021-10-08", "mirror", 2e6),
            _row("defillama:mirror-2", "defillama", "2021-10-08", "mirror", 2e6),
            _row("defihacklabs:mirror", "defihacklabs", "2021-10-08", "mirror"),
        ]
    )
    assert groups["defillama:mirror"].group_id != groups["defillama:mirror-2"].group_id


def test_far_apart_dates_or_amounts_do_not_link() -> None:
    groups = assign_groups(
        [
            _row("defillama:x", "defillama", "2022-01-01", "ronin", 600e6),
            _row("blocksec:1", "blocksec", "2022-01-10", "ronin", 600e6),
            _row("defihacklabs:y", "defihacklabs", "2022-01-01", "ronin", 1e3),
        ]
    )
    assert len({g.group_id for g in groups.values()}) == 3


def test_explicit_related_ids_link_even_when_names_differ() -> None:
    groups = assign_groups(
        [
            _row("defillama:portal", "defillama", "2022-02-02", "portal", 326e6),
            _row("defihacklabs:wormhole", "defihacklabs", "2022-02-02", "wormhole", None, ("defillama:portal",)),
        ]
    )
    assert groups["defihacklabs:wormhole"].group_id == "defillama:portal"


def test_group_amount_falls_back_to_another_report_when_the_canonical_has_none() -> None:
    groups = assign_groups(
        [
            _row("defillama:r", "defillama", "2022-11-29", "ratio", None),
            _row("blocksec:9", "blocksec", "2022-11-29", "ratio", 3e6),
        ]
    )
    assert groups["defillama:r"].group_amount_usd == 3e6
