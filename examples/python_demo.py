"""tls from Python: per-thread values, at_exit handlers, and closes.

  bazel run //examples:python_demo

Each worker keeps its own request context and a connection-like value; when
the worker ends, its handler reads the context, then the connection closes.
"""

import threading

import tls


class Connection:
    """Stands in for a resource a thread opens once and must close."""

    def __init__(self, name):
        self.name = name
        self.closed = False

    def close(self):
        self.closed = True
        print(f"  {self.name}: closed")


def handle_request(request_id, results):
    tls.set("request", request_id)  # this thread's own value
    if tls.get("conn") is None:
        tls.set("conn", Connection(f"conn-{request_id}"))
    tls.at_exit(lambda: print(f"  thread {tls.id()} ending, last request {tls.get('request')}"))
    results[request_id] = (tls.id(), tls.get("request"))


def main():
    results = {}
    workers = [threading.Thread(target=handle_request, args=(r, results)) for r in ("r1", "r2", "r3")]
    for w in workers:
        w.start()
        w.join()  # one at a time, so the output reads in order
    ids = {thread_id for thread_id, _ in results.values()}
    assert len(ids) == 3, results  # every thread its own ID
    assert all(request == r for r, (_, request) in results.items())  # and its own value

    # Data closes its value once, however many times it is stored or closed.
    conn = Connection("shared")
    data = tls.make_data(conn)
    tls.set("a", data)
    tls.set("b", data)
    tls.reset()  # closes "shared" once; the main thread keeps its ID
    assert conn.closed and not data.close()
    print("main thread", tls.id(), "has", tls.get("a"))


if __name__ == "__main__":
    main()
