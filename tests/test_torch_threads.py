"""The app's torch threads (`app.torch_threads`): one core for each thread of the server, all of them for a run's."""

from __future__ import annotations

import threading

import pytest
import torch

from app import torch_threads


def count_in_a_new_thread(work=None) -> int:
    """torch's count in a thread that first uses torch now (after ``work``, in it)."""
    seen = []

    def body():
        if work is not None:
            work()
        seen.append(torch.get_num_threads())

    thread = threading.Thread(target=body)
    thread.start()
    thread.join()
    return seen[0]


@pytest.fixture
def cores_of_a_server(monkeypatch):
    """torch's own count of 2 (as on this 2-core machine, whatever the tests set), put back afterwards."""
    monkeypatch.setattr(torch_threads, "_cores", None)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


def test_more_cores_are_left_as_torch_counts_them(cores_of_a_server, monkeypatch):
    """Measured on 2 cores only: on more, a Generate of the U-Net would lose the cores it may gain from."""
    monkeypatch.setattr(torch_threads, "SMALL_MACHINE_CORES", 1)  # 2 cores are then "more"
    assert torch_threads.one_core_per_request() is False
    assert torch.get_num_threads() == 2 and count_in_a_new_thread() == 2 and torch_threads._cores is None
    assert count_in_a_new_thread(torch_threads.all_cores_for_this_thread) == 2 and count_in_a_new_thread() == 2


def test_the_server_computes_on_one_core_in_each_thread(cores_of_a_server):
    assert torch_threads.one_core_per_request() is True
    assert torch.get_num_threads() == 1 and count_in_a_new_thread() == 1
    assert torch_threads._cores == 2  # kept for the training runs
    torch_threads.one_core_per_request()  # a second server in the process (tests) keeps the machine's count
    assert torch_threads._cores == 2


def test_a_runs_thread_takes_all_the_cores_and_later_threads_still_get_one(cores_of_a_server):
    """A thread that had not used torch yet takes its count from a process-wide number at its first use of torch;
    setting its own count sets that number too, which had made every thread of the server started later compute
    on all the cores (and, in the other order, the run's thread on one)."""
    torch_threads.one_core_per_request()
    started_before = threading.Event()
    later_count = []
    waiting = threading.Thread(target=lambda: (started_before.wait(), later_count.append(torch.get_num_threads())))
    waiting.start()  # a worker of the server that exists already and first uses torch after the run set its cores
    in_run = count_in_a_new_thread(torch_threads.all_cores_for_this_thread)
    started_before.set()
    waiting.join()
    assert in_run == 2
    assert later_count == [1] and count_in_a_new_thread() == 1 and torch.get_num_threads() == 1


def test_without_a_server_a_thread_keeps_torchs_count(cores_of_a_server):
    """Called outside `python app.py` (the tests, a notebook): the thread keeps the count torch gives it, and so do
    the others."""
    assert count_in_a_new_thread(torch_threads.all_cores_for_this_thread) == 2
    assert torch.get_num_threads() == 2 and count_in_a_new_thread() == 2
