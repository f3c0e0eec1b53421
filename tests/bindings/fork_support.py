"""What the fork tests of the ctypes package and of the uniffi binding share:
a client created and used in a parent, then inherited by forked children (as
under gunicorn --preload or multiprocessing's fork start method).

``prefork_orders(build, prefix)`` orders once in the parent; optionally forks
a child that only closes the client and exits (the parent must not notice);
forks ``children`` children that each order ``orders`` times, while the
parent orders as many again; waits for every child (each ends with its own
exit status, or is killed after CHILD_TIMEOUT_SECS); and orders once more in
the parent. ``build(out_trade_no)`` orders through the client and returns the
answer's ``(out_trade_no, prepayid)``: every answer must be for the order its
own process sent, and every prepay id must be distinct (no process ever reads
another's answer). Returns the problems found (none when all is well) and
every prepay id.
"""

import os
import signal
import sys

# A child that hangs is killed (SIGALRM) after this many seconds.
CHILD_TIMEOUT_SECS = 60


def _describe(status):
    if os.WIFSIGNALED(status):
        return f"signal {os.WTERMSIG(status)}"
    return f"exit status {os.WEXITSTATUS(status)}"


def _fork(work):
    """Forks a child that runs ``work()`` and exits 0, or 1 if it raised."""
    pid = os.fork()
    if pid != 0:
        return pid
    status = 1
    try:
        signal.alarm(CHILD_TIMEOUT_SECS)
        work()
        status = 0
    except BaseException as e:  # the child reports, then exits with its status
        sys.stderr.write(f"fork child {os.getpid()}: {type(e).__name__}: {e}\n")
    finally:
        os._exit(status)


def prefork_orders(build, prefix, children=4, orders=3, close=None):
    problems = []
    ids = []

    def order(tag, i):
        no = f"{prefix}{tag}{os.getpid()}N{i}"
        answered, prepay_id = build(no)
        if answered != no:
            raise AssertionError(f"ordered {no}, answered for {answered}")
        return prepay_id

    ids.append(order("P", 0))
    if close is not None:
        _, status = os.waitpid(_fork(close), 0)
        if status != 0:
            problems.append(f"the child that closes the client: {_describe(status)}")
        ids.append(order("P", 1))

    read_end, write_end = os.pipe()

    def child(c):
        os.close(read_end)
        mine = [order(f"C{c}x", i) for i in range(orders)]
        # One write of less than PIPE_BUF: the children's lines never mix.
        os.write(write_end, "".join(f"{p}\n" for p in mine).encode())

    pids = [_fork(lambda c=c: child(c)) for c in range(children)]
    os.close(write_end)
    ids += [order("P", 10 + i) for i in range(orders)]
    for c, pid in enumerate(pids):
        _, status = os.waitpid(pid, 0)
        if status != 0:
            problems.append(f"child {c}: {_describe(status)}")
    with os.fdopen(read_end) as from_children:
        children_ids = from_children.read().split()
    if len(children_ids) != children * orders:
        problems.append(f"{len(children_ids)} prepay ids from the children, not {children * orders}")
    ids += children_ids
    ids.append(order("P", 99))
    if len(set(ids)) != len(ids):
        problems.append("a prepay id came twice: an answer reached another process")
    return problems, ids
