"""Several targets side by side, each target's checks together on one pytest-xdist worker.

A target's state and its rate budget are shared by its checks, so they must not be spread over
workers. Several targets are independent devices: without `-n` they run side by side, one worker each
up to MAX_DEFAULT_WORKERS (a device paced by its rate budget then does not hold up the others); `-n N`
caps the workers, `-n 0` runs the targets in turn, `--tx` (xdist's remote execution) places the
workers. The controller schedules by xdist_group (collection.py marks every check with its target's).
"""

from __future__ import annotations

import pytest

# A worker is a process with its own emulator and threads; more targets than this share workers,
# one target after the other.
MAX_DEFAULT_WORKERS = 8


def is_controller(config) -> bool:
    """The process that writes the reports: a run without xdist, or xdist's controller. (xdist's
    documented test: a worker's config has `workerinput`.)"""
    return not hasattr(config, "workerinput")


def keep_targets_together(config, target_count: int) -> None:
    """Choose the workers and make the run a loadgroup run (called from pytest_configure, after
    xdist turned `-n` into `--tx` and `--dist load` in its pytest_cmdline_main).

    These are option values (config.option is pytest's public namespace of them); xdist has no hook
    that sets the number of workers or the distribution of a run."""
    if not is_controller(config):
        # A worker starts only after the controller accepted the run's --dist (load, no or
        # loadgroup, below) and made it loadgroup. xdist reset the worker's --dist, and tags its
        # items with their group only when its own `loadgroup` value says so, set from the --dist
        # given on the command line: with `-n 2` alone that is not loadgroup, so it is said here.
        config.option.loadgroup = True
        return
    if not config.pluginmanager.hasplugin("xdist"):
        return
    if (target_count > 1 and config.getoption("numprocesses") is None and not config.getoption("tx")
            and not config.getoption("usepdb") and not config.getoption("collectonly")):
        workers = min(target_count, MAX_DEFAULT_WORKERS)
        config.option.numprocesses = workers
        config.option.tx = ["popen"] * workers  # what xdist derives from -n, before this hook
    if config.getoption("numprocesses") or config.getoption("tx"):
        dist = config.getoption("dist")
        if dist in ("load", "no"):
            config.option.dist = "loadgroup"
        elif dist != "loadgroup":
            raise pytest.UsageError(f"--dist {dist} would spread one target's checks over several workers (its "
                                    "state and rate budget are shared); leave --dist out: loadgroup is used")
