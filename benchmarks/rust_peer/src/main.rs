//! Rust's `thread_local::ThreadLocal` as the peer of `Counter::Read` and
//! `Slot::ForEachThread`: `iter()` summing one `AtomicI64` per parked thread,
//! at 1, 64 and 1,000 threads, the same shapes as benchmarks/tls_bench.cc.
//! Prints Google Benchmark JSON (medians of the repetitions) for
//! tools/bench_table.py. Usage: tls_rust_peer REPETITIONS MIN_SECONDS
use std::hint::black_box;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Barrier, Condvar, Mutex};
use std::time::{Duration, Instant};
use thread_local::ThreadLocal;

/// `n` threads that each add 1 to their value of `tl`, then wait until dropped.
struct Parked {
    release: Arc<(Mutex<bool>, Condvar)>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Parked {
    fn new(n: usize, tl: &Arc<ThreadLocal<AtomicI64>>) -> Parked {
        let release = Arc::new((Mutex::new(false), Condvar::new()));
        let ready = Arc::new(Barrier::new(n + 1));
        let threads = (0..n)
            .map(|_| {
                let (tl, release, ready) = (tl.clone(), release.clone(), ready.clone());
                std::thread::Builder::new()
                    .stack_size(64 * 1024)
                    .spawn(move || {
                        tl.get_or(|| AtomicI64::new(0)).fetch_add(1, Ordering::Relaxed);
                        ready.wait();
                        let (lock, cv) = &*release;
                        let mut go = lock.lock().unwrap();
                        while !*go {
                            go = cv.wait(go).unwrap();
                        }
                    })
                    .expect("spawn")
            })
            .collect();
        ready.wait();
        Parked { release, threads }
    }
}

impl Drop for Parked {
    fn drop(&mut self) {
        let (lock, cv) = &*self.release;
        *lock.lock().unwrap() = true;
        cv.notify_all();
        for t in self.threads.drain(..) {
            t.join().unwrap();
        }
    }
}

fn sum(tl: &ThreadLocal<AtomicI64>) -> i64 {
    tl.iter().map(|v| v.load(Ordering::Relaxed)).sum()
}

/// ns per sum: iterations doubled until a run lasts `min`, then timed.
fn time_sums(tl: &ThreadLocal<AtomicI64>, min: Duration) -> f64 {
    let mut iters: u64 = 1;
    loop {
        let start = Instant::now();
        for _ in 0..iters {
            black_box(sum(black_box(tl)));
        }
        let took = start.elapsed();
        if took >= min {
            return took.as_nanos() as f64 / iters as f64;
        }
        iters *= 2;
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let m = v.len() / 2;
    if v.len() % 2 == 1 { v[m] } else { (v[m - 1] + v[m]) / 2.0 }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let reps: usize = args.get(1).map_or(5, |s| s.parse().expect("REPETITIONS"));
    let min = Duration::from_secs_f64(args.get(2).map_or(0.5, |s| s.parse().expect("MIN_SECONDS")));
    let mut rows = Vec::new();
    for n in [1usize, 64, 1000] {
        let tl = Arc::new(ThreadLocal::new());
        let parked = Parked::new(n, &tl);
        assert_eq!(sum(&tl), n as i64, "iter missed a parked thread's value");
        let ns = median((0..reps).map(|_| time_sums(&tl, min)).collect());
        drop(parked);
        rows.push(format!(
            "{{\"name\": \"BM_RustThreadLocal_IterSum/threads:{n}_median\", \
             \"run_name\": \"BM_RustThreadLocal_IterSum/threads:{n}\", \
             \"run_type\": \"aggregate\", \"aggregate_name\": \"median\", \
             \"repetitions\": {reps}, \"real_time\": {ns}, \"cpu_time\": {ns}, \
             \"time_unit\": \"ns\"}}"
        ));
    }
    println!("{{\"context\": {{}}, \"benchmarks\": [\n  {}\n]}}", rows.join(",\n  "));
}
