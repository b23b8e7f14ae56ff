"""The upsampling verdict: PAC is chosen on val, and is ahead of a method only beyond
the seed spread; merged runs are judged over all their seeds."""
import pytest

from convdense.evaluation.upsampling_verdict import (ahead, judge, merge_rows, summarise,
                                                     unseen_scene_goal)


def _rows(pac_val, pac_test, other_pac_val, other_pac_test, jbu=3.0):
    return [dict(method='JBU', params=0, learned=False, test={'A': summarise([jbu])}),
            dict(method='PAC (a)', params=1, learned=True, val=summarise(pac_val),
                 test={'A': summarise(pac_test)}),
            dict(method='PAC (b)', params=1, learned=True, val=summarise(other_pac_val),
                 test={'A': summarise(other_pac_test)})]


def test_the_pac_variant_is_chosen_on_val_even_when_another_tests_better():
    block = judge(_rows([1.0], [2.9], [1.5], [2.0]))
    assert block['chosen_pac'] == 'PAC (a)'
    assert block['gain_over_jbu']['A'] == pytest.approx(1 - 2.9 / 3.0)
    assert block['verdict'] == {'JBU': {'A': True}}


def test_a_gap_inside_the_seed_spread_is_not_a_win():
    assert ahead(summarise([2.0, 2.2]), summarise([2.3])) is False   # gap 0.2 = spread 0.2
    assert ahead(summarise([2.0, 2.2]), summarise([2.35])) is True
    assert ahead(summarise([2.0]), summarise([2.5, 3.5])) is False   # the other's spread counts too


def test_goal_needs_the_margin_and_the_verdict_on_every_fold():
    folds = {'A': judge(_rows([1.0], [2.85], [2.0], [4.0])),   # 5 % ahead
             'B': judge([dict(r, test={'B': r['test']['A']}) for r in _rows([1.0], [2.95], [2.0], [4.0])])}
    block = unseen_scene_goal(folds)
    assert block['gain_over_jbu'] == pytest.approx({'A': 0.05, 'B': 1 - 2.95 / 3.0})
    assert block['goal_met'] is False                              # 1.7 % on B
    assert unseen_scene_goal({'A': folds['A']})['goal_met'] is True


def test_merged_rows_pool_the_seeds_and_refuse_different_methods():
    first, second = _rows([1.0], [2.8], [2.0], [4.0]), _rows([1.2], [3.0], [2.0], [4.0])
    merged = merge_rows([first, second])
    assert merged[0] is first[0]                                   # the baseline is kept once
    assert merged[1]['test']['A']['seeds'] == [2.8, 3.0] and merged[1]['val']['seeds'] == [1.0, 1.2]
    with pytest.raises(ValueError, match='cannot merge different methods'):
        merge_rows([first, list(reversed(second))])
    with pytest.raises(ValueError, match='no seed values'):
        summarise([])
