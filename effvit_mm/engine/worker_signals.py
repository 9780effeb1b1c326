"""DataLoader workers that leave the preemption signal to the main process (:func:`spare_worker`)."""
import os
import signal
import threading

__all__ = ['spare_worker']

_spared = None  # the process whose signals spare_worker() has taken


def spare_worker(signals):
    """In a DataLoader worker (called once it runs; once a process is enough): ``signals`` sent by anyone
    but the main process are ignored, so that the signal a cluster sends to every process of a job does
    not kill the worker (torch's workers die on SIGTERM, which fails the iteration in progress) and the
    main process can save its checkpoint; sent by the main process (the SIGTERM with which it ends its
    workers), they end the worker, as torch's own handler does.

    The signals are blocked in the calling thread (the worker's only thread before it first returns a
    sample) and so in every thread it starts later; one thread takes them with their sender."""
    global _spared
    if _spared == os.getpid():
        return
    _spared = os.getpid()
    numbers = {getattr(signal, s) for s in signals}
    signal.pthread_sigmask(signal.SIG_BLOCK, numbers)
    threading.Thread(target=_take_signals, args=(numbers, os.getppid()), daemon=True).start()


def _take_signals(signals, parent):
    while True:
        if signal.sigwaitinfo(signals).si_pid == parent:
            os._exit(0)
