import numpy as np

from pipeline.data.positions import nth_unexcluded, nth_unexcluded_grouped


def walk(excluded: set[int], n: int) -> int:
    """The obvious reference: walk the slots and count the free ones."""
    slot, free = 0, -1
    while True:
        if slot not in excluded:
            free += 1
            if free == n:
                return slot
        slot += 1


def test_nth_unexcluded_matches_walking():
    rng = np.random.default_rng(0)
    for _ in range(50):
        excluded = np.unique(rng.integers(0, 40, rng.integers(0, 30)))
        n = np.arange(20)
        expected = [walk(set(excluded.tolist()), int(i)) for i in n]
        assert nth_unexcluded(excluded, n).tolist() == expected


def test_groups_are_independent():
    got = nth_unexcluded_grouped(
        np.array([1, 0, 1, 1]),
        np.array([2, 0, 0, 1]),
        np.array([0, 0, 1, 1, 2]),
        np.array([0, 1, 0, 1, 0]),
    )
    # group 0 excludes {0}; group 1 excludes {0, 1, 2}; group 2 excludes nothing
    assert got.tolist() == [1, 2, 3, 4, 0]
