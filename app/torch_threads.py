"""How the server's threads share the cores for torch's work.

torch splits an op over the cores (its intra-op threads, OpenMP) in whichever thread calls it, and each Python thread
that does so gets a team of OpenMP threads of its own. The app calls torch from many threads: the main one (the
first views), Gradio's workers (a scrub, a Generate) and the training runs' own. With more OpenMP threads about than
cores, libgomp stops letting its threads wait busily at the end of each op and puts them to sleep, so every short op
then pays to wake them. On 2 cores (this machine, a free Space), with the main thread having used torch first, as in
the app (`bench/bench_threads.py`):

- a 2D Generate (1,000 MLP steps on 1,500 points) sampled in 4.3 s on two threads, 3.6 s on one, and 2.1 s when its
  thread is the only one that ever used torch;
- a 2D training step took 8.1 ms on two threads, 4.7 ms on one, 3.8 ms on two in the only such thread;
- an MNIST training step of the `small` U-Net took 154 ms on two threads, 205 ms on one, 123 ms on two in the only
  such thread.

So on such a machine each of the server's threads computes on one core (`one_core_per_request`), which also leaves
the other core to another visitor, and a training run's thread, the one long job, takes both for its own team
(`all_cores_for_this_thread`). On more cores this is not measured, and a Generate of the U-Net would lose the cores
it may well gain from: there the server leaves torch's counts as they are (`SMALL_MACHINE_CORES`).

A thread that first uses torch in the moment between a run's thread setting its count and setting the process-wide
number back (a thread of Gradio's, started then) keeps all the cores, as without this module.
"""

from __future__ import annotations

import threading

import torch

SMALL_MACHINE_CORES = 2  # the most cores torch counts for which the server computes on one core per thread
_cores: int | None = None  # torch's own count for this machine, read before the server set it to one


def one_core_per_request() -> bool:
    """On a machine of at most `SMALL_MACHINE_CORES` cores (torch's count), from now on each thread of this process
    that has not used torch yet computes on one core, the calling thread too. Call it when the server starts, before
    any torch work (one that already had a team keeps it, idle). Returns whether it did so."""
    global _cores
    cores = _cores or torch.get_num_threads()
    if cores > SMALL_MACHINE_CORES:
        return False
    _cores = cores
    torch.set_num_threads(1)
    return True


def cores_of_a_run() -> int:
    """The threads a training run computes on (`all_cores_for_this_thread`), for its label."""
    return _cores or torch.get_num_threads()


def all_cores_for_this_thread() -> int:
    """The calling thread computes on all the machine's cores (torch's own count for it; after
    `one_core_per_request`, the count read before it), and threads that start using torch later still get one.
    Returns that count.

    torch keeps one process-wide number, from which each thread takes its own count at its first use of torch, and
    `torch.set_num_threads` sets both the caller's count and that number: so this thread takes its count first, then
    sets it, and a short thread of its own puts the number back to one."""
    cores = cores_of_a_run()
    torch.get_num_threads()  # this thread's count is taken now, from the process-wide number
    torch.set_num_threads(cores)
    if _cores is not None:
        back = threading.Thread(target=torch.set_num_threads, args=(1,), name="torch-threads-back-to-one")
        back.start()
        back.join()
    return cores
