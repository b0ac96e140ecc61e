import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))  # tests import their helpers (toy_envs) by name

import pytest  # noqa: E402

#: modules whose tests train for thousands of steps, start Ray clusters, build wheels or drive SUMO
#: processes end to end: marked ``slow`` (``pytest -m "not slow"`` is the fast set; CI runs it first)
SLOW_MODULES = {"test_learning.py", "test_paper_benchmark.py", "test_ray.py", "test_transfer.py", "test_wheel.py",
                "test_reliability.py", "test_ecosystem.py"}


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.path.name in SLOW_MODULES:
            item.add_marker(pytest.mark.slow)
