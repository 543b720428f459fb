"""Values are released after their thread ends, and thousands of threads leave
nothing behind."""

import gc
import sys
import threading
import unittest
import weakref

import tls
from support import run_in_native_thread


class Counted:
    """Counts live instances, so a leak of stored values or handlers shows.
    Under a lock: without a GIL (3.13t) `live += 1` from many threads loses
    counts."""

    live = 0
    lock = threading.Lock()

    def __init__(self):
        with Counted.lock:
            Counted.live += 1

    def __del__(self):
        with Counted.lock:
            Counted.live -= 1

    def close(self):
        pass

    def handler(self):
        tls.get("v")


def use_tls():
    value = Counted()
    tls.set("v", value)
    tls.set("d", tls.make_data(Counted()))
    tls.set(("tuple", 1), value)
    tls.at_exit(Counted().handler)


def run_threads(n, target=use_tls):
    for _ in range(n // 50):
        threads = [threading.Thread(target=target) for _ in range(50)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()


class ReleaseTest(unittest.TestCase):
    def test_weakref_to_a_stored_value_dies_after_its_thread_ends(self):
        refs = []

        def body():
            value = Counted()
            refs.append(weakref.ref(value))
            tls.set("v", value)
            tls.at_exit(lambda: tls.get("v"))

        t = threading.Thread(target=body)
        t.start()
        t.join()
        self.assertIsNone(refs[0]())  # no gc.collect(): released by refcount

    def test_reset_and_unload_release_values(self):
        for drop in (tls.reset, tls.unload, lambda: tls.delete("v")):
            value = Counted()
            ref = weakref.ref(value)
            tls.set("v", value)
            del value
            drop()
            self.assertIsNone(ref())
        tls.unload()


class ManyThreadsTest(unittest.TestCase):
    def test_thousands_of_threads_leak_no_objects(self):
        run_threads(200)  # warm up caches (threading, allocator)
        gc.collect()
        objects_before = len(gc.get_objects())
        blocks_before = sys.getallocatedblocks()
        run_threads(3000)
        gc.collect()
        self.assertEqual(Counted.live, 0)
        # A leak of one object per thread would add >= 3000; allow noise.
        self.assertLess(len(gc.get_objects()) - objects_before, 300)
        self.assertLess(sys.getallocatedblocks() - blocks_before, 1500)

    def test_thousands_of_native_threads_leak_no_objects(self):
        def native():
            run_in_native_thread(use_tls)

        def control():  # the same native threads, allocating, without tls
            run_in_native_thread(lambda: [Counted() for _ in range(3)])

        def growth(start_one):
            for _ in range(100):
                start_one()
            gc.collect()
            blocks_before = sys.getallocatedblocks()
            for _ in range(2000):
                start_one()
            gc.collect()
            return sys.getallocatedblocks() - blocks_before

        # Against a control in the same run: free-threaded 3.13 counts ~27
        # blocks per native thread state made and dropped, tls or not.
        baseline = growth(control)
        self.assertEqual(Counted.live, 0)
        self.assertLess(growth(native) - baseline, 1000)
        self.assertEqual(Counted.live, 0)


    def test_thousands_of_tasks_leak_no_objects(self):
        # Tasks on a pool: each sees the submitter's values, stores its own,
        # registers a handler, and ends; the snapshots go with their futures.
        tls.set("submitter", Counted())
        try:
            with tls.ThreadPoolExecutor(max_workers=4) as pool:
                for _ in range(200):
                    pool.submit(use_tls).result()
                gc.collect()
                objects_before = len(gc.get_objects())
                blocks_before = sys.getallocatedblocks()
                for future in [pool.submit(use_tls) for _ in range(3000)]:
                    future.result()
                gc.collect()
                self.assertLess(len(gc.get_objects()) - objects_before, 300)
                self.assertLess(sys.getallocatedblocks() - blocks_before, 1500)
        finally:
            tls.unload()
        gc.collect()
        self.assertEqual(Counted.live, 0)


if __name__ == "__main__":
    unittest.main()
