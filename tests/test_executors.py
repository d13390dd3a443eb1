import sys

import pytest
from executor_jobs import die_on_three, failing_initializer, set_offset, slow_square_plus_offset

from cosmos_env.executors import LocalExecutor, WorkerLost, make_executor

ITEMS = [3, 0, 7, 1, 9, 4, 2]


@pytest.fixture(params=[("local", 1), ("local", 2), ("ray", 2)], ids=lambda p: f"{p[0]}-{p[1]}")
def executor(request):
    """Each executor the tests compare: in-process, two spawned processes, two Ray actors."""
    name, workers = request.param
    if name == "ray":
        request.getfixturevalue("ray_session")
    return make_executor(name, workers)


def test_every_executor_gives_the_results_in_the_items_order(executor):
    results = executor.map(slow_square_plus_offset, ITEMS, set_offset, (100,))
    assert list(results) == [x * x + 100 for x in ITEMS]  # the initializer ran in each worker


def test_a_worker_that_dies_raises_worker_lost(executor):
    if executor.workers == 1:
        pytest.skip("in this process: nothing to lose but the test run itself")
    with pytest.raises(WorkerLost, match=f"a {executor.name} worker died"):
        list(executor.map(die_on_three, ITEMS))


def test_an_initializer_error_is_not_mistaken_for_a_crash(ray_session):
    with pytest.raises(ray_session.exceptions.RayActorError, match="bad worker setup") as info:
        list(make_executor("ray", 2).map(slow_square_plus_offset, ITEMS, failing_initializer))
    assert not isinstance(info.value, WorkerLost)


def test_one_local_worker_runs_in_this_process():
    executor = make_executor("local", 1)
    assert isinstance(executor, LocalExecutor)
    assert list(executor.map(slow_square_plus_offset, [2], set_offset, (1,))) == [5]
    import executor_jobs

    assert executor_jobs._worker["offset"] == 1  # the initializer ran here


def test_unknown_executor_names_the_choices():
    with pytest.raises(ValueError, match="unknown executor 'dask'; choose one of local, ray"):
        make_executor("dask", 2)


@pytest.mark.parametrize("name", ["local", "ray"])
def test_an_executor_needs_a_worker(name):
    with pytest.raises(ValueError, match="at least one worker, got workers=0"):
        make_executor(name, 0)


def test_ray_missing_says_which_extra_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now raises ImportError
    with pytest.raises(ImportError, match=r"pip install 'cosmos-env\[ray\]'"):
        make_executor("ray", 2)
