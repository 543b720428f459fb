"""A Python web handler that calls C++ (request_ext.cc), sharing context with it.

Each request is handled on its own thread, as a threaded server does. The
handler sets the request and trace IDs with tls.cpp.set, in the engine's store
that C++ reads; the extension fans the work out to a C++ thread pool through
tls::Wrap, and every part logs the IDs Python set. At each handler thread's
end, at_exit handlers of both languages run newest first, then the C++ values
close, then the Python ones, all before join() returns.

    python handler.py     (with request_ext built against the installed wheel;
                           examples/python_cpp/check.sh does it all)
"""

import sys
import threading

import tls

import request_ext


class Session:
    def __init__(self, request):
        self.request = request

    def close(self):
        print(f"  Python session of {self.request} closed", flush=True)


def handle(request, trace):
    tls.cpp.set("request_id", request)
    tls.cpp.set("trace_id", trace)
    tls.set("session", Session(request))  # a Python value: Python's own store
    tls.at_exit(lambda: print(f"  Python at_exit of {request}", flush=True))
    request_ext.open_connection()  # registers C++ AtExit after ours: it runs first
    for line in request_ext.fan_out(3):
        print(f"  {line}", flush=True)
    print(f"  rows counted by C++: {tls.cpp.get('rows')}", flush=True)


def main():
    for request, trace in (("r-1", "t-a"), ("r-2", "t-b")):
        print(f"{request}:", flush=True)
        worker = threading.Thread(target=handle, args=(request, trace))
        worker.start()
        worker.join()
        print(f"{request} joined", flush=True)
    print("main thread:", tls.cpp.get("request_id"), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
