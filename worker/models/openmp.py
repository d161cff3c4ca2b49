"""One OpenMP thread for the trees of a loaded model."""

from __future__ import annotations

import functools
from typing import Any

from threadpoolctl import ThreadpoolController


@functools.cache
def _controller() -> ThreadpoolController:
    return ThreadpoolController()


def one_openmp_thread() -> Any:
    """A context in which OpenMP runs one thread. The libraries are found once: looking them
    up (``threadpool_limits``) reads the process's memory maps every time, 4 ms a call, more
    than predicting a page of accounts or an event batch's deals. Call it only once a model
    is loaded (scikit-learn's OpenMP library with it): the controller sees the libraries
    loaded when it is first built."""
    return _controller().limit(limits=1, user_api="openmp")
