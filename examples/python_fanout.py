"""A request fan-out in Python, with tls tasks on a thread pool.

  bazel run //examples:python_fanout

The request handler sets the request ID and a connection, fans parts out to a
tls.ThreadPoolExecutor, and every part logs with the request's ID without
being passed it. Each request runs as a task of its own (Snapshot().run), like
a goroutine. The request answers without waiting for its parts (fire and
forget): its connection stays open while a part holds it and is closed once,
after its last part; each part's scratch value is closed when that part ends;
nothing is left on the pool's threads. The program checks all of that and
prints PASS.
"""

import threading

import tls

events = []  # (request, what), in order
events_lock = threading.Lock()


def record(request, what):
    with events_lock:
        events.append((request, what))
    print(f"[{request}] {what}")


def log(what):
    # The request ID of whatever task this runs in.
    record(tls.get("request_id", default="no request"), what)


class Connection:
    # A close runs when the task's values are already detached (it sees an
    # empty store, as at thread exit), so the value keeps its request itself.
    def __init__(self, request, peer):
        self.request, self.peer, self.open = request, peer, True

    def close(self):
        self.open = False
        record(self.request, f"connection to {self.peer} closed")


class Scratch:
    def __init__(self, request, part):
        self.request, self.part = request, part

    def close(self):
        record(self.request, f"scratch of part {self.part} closed")


def part(n):
    tls.set("scratch", Scratch(tls.get("request_id"), n))
    conn = tls.get("conn")
    seen = "missing" if conn is None else "open" if conn.open else "closed"
    log(f"part {n} on a pool thread, connection {seen}")


def handle_request(pool, request_id, parts):
    def request():
        tls.set("request_id", request_id)
        tls.set("conn", Connection(request_id, "db-1"))
        log(f"fanning out {parts} parts")
        for n in range(parts):
            pool.submit(part, n)  # not waited for
        log("answered, not waiting for its parts")

    # The request's own values. When it ends, its connection stays open while
    # a part holds it, and is closed, once, when the last part lets go.
    tls.Snapshot().run(request)


def check(requests):
    for request_id, parts in requests:
        mine = [what for request, what in events if request == request_id]
        open_ = [w for w in mine if w.endswith("connection open")]
        assert len(open_) == parts, (request_id, mine)   # never closed under a part
        closes = [w for w in mine if w.startswith("scratch of part")]
        assert len(closes) == parts, (request_id, mine)
        assert mine.count("connection to db-1 closed") == 1, (request_id, mine)
        last_part = max(i for i, w in enumerate(mine) if w.startswith("part "))
        assert mine.index("connection to db-1 closed") > last_part, (request_id, mine)
    assert not any(w.endswith(("connection missing", "connection closed")) for _, w in events), \
        events


def main():
    requests = [("req-7", 4), ("req-8", 2)]
    with tls.ThreadPoolExecutor(max_workers=3) as pool:
        for request_id, parts in requests:
            handle_request(pool, request_id, parts)
        # Submitted without propagation (the base class's submit), a call sees
        # the pool thread's own state: empty, nothing left over from the parts.
        state = super(tls.ThreadPoolExecutor, pool).submit(
            lambda: (tls.get("scratch"), tls.get("request_id"))).result()
    assert state == (None, None), state
    assert tls.get("conn") is None and tls.get("request_id") is None
    check(requests)
    print("PASS")


if __name__ == "__main__":
    main()
