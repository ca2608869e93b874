//! Deterministic mutation fuzzing on stable Rust: corpus files and generated
//! fixtures, mutated by byte flips, overwrites, truncations, splices between
//! two files, duplicated and removed ranges, inserted PDF tokens and absurd
//! numbers. Every input must give `Ok` or a typed error — never a panic, and
//! never more than [`MAX_PER_INPUT`] (a hang detector, not a benchmark).
//! When stamping succeeds, the output is stamped again: that must not panic
//! either, and must succeed (an update the engine wrote on an input it
//! accepted has to be readable).
//!
//! Each input is reproducible from the seed and its iteration number alone:
//!
//! - `PEEDY_FUZZ_ITERS=N` — inputs per test (default: [`CORPUS_ITERS`] and
//!   [`FIXTURE_ITERS`]). A long run: `PEEDY_FUZZ_ITERS=1000000 cargo test
//!   -p peedy-stamp --test fuzz` (the dev profile also catches integer
//!   overflow; add `--release` for ~10× the inputs per second without it).
//! - `PEEDY_FUZZ_SEED=S` — the seed, decimal or `0x…` (default: a fixed
//!   one, so `cargo test` is repeatable).
//! - `PEEDY_FUZZ_FROM=I` — the first iteration (to replay one failure:
//!   `PEEDY_FUZZ_SEED=S PEEDY_FUZZ_FROM=I PEEDY_FUZZ_ITERS=1`).
//!
//! One run reports every distinct panic (by message and place) and every
//! output that does not stamp again; each failing input is written to
//! `target/fuzz-crashes/`. The iteration in progress is recorded in
//! `target/fuzz-crashes/<test>.in-progress`, so even an abort (a stack
//! overflow cannot be caught) names the input to replay.

mod common;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use peedy_stamp::{Limits, Options, Stamper, Watermark};

/// Inputs per test in an ordinary `cargo test`: 4500 in all. The dev
/// profile builds the engine without optimisation (dependencies get
/// opt-level 2); measured on the shared 2-core machine: corpus mutations
/// take ~13 ms each (the few large corpus files dominate: up to 0.4 s for
/// a mutated 2.8 MB file), fixture mutations ~1.5 ms — about 20 s + 5 s.
const CORPUS_ITERS: u64 = 1500;
const FIXTURE_ITERS: u64 = 3000;
/// The longest one input (stamp, then stamp the output) may take.
const MAX_PER_INPUT: Duration = Duration::from_secs(10);
/// The fixed default seed.
const DEFAULT_SEED: u64 = 0x05EE_D0F9_EED1;

thread_local! {
    /// Where the last panic on this thread happened (set by the hook).
    static LAST_PANIC: std::cell::RefCell<Option<String>> = const { std::cell::RefCell::new(None) };
}

/// Records panic locations on fuzz worker threads, then lets the default
/// hook print as usual.
fn install_panic_hook() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        let seen = std::sync::Mutex::new(std::collections::HashSet::new());
        std::panic::set_hook(Box::new(move |info| {
            if thread::current()
                .name()
                .is_some_and(|n| n.ends_with("-worker"))
            {
                let at = info
                    .location()
                    .map(|l| format!("{}:{}:{}", l.file(), l.line(), l.column()));
                LAST_PANIC.with(|l| *l.borrow_mut() = at.clone());
                // Print each place once, not once per input.
                let first = seen.lock().map_or(true, |mut s| s.insert(at));
                if !first {
                    return;
                }
            }
            default(info);
        }));
    });
}

/// splitmix64: small, fast, good enough to pick mutations.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Self(seed)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    /// A position in `data`, often near the end (where xref and trailer
    /// live) or the start.
    fn pos(&mut self, len: usize) -> usize {
        if len == 0 {
            return 0;
        }
        match self.below(4) {
            0 => len - 1 - self.below(len.min(2048)),
            1 => self.below(len.min(2048)),
            _ => self.below(len),
        }
    }
}

const TOKENS: &[&[u8]] = &[
    b"<<",
    b">>",
    b"obj",
    b"endobj",
    b"stream",
    b"endstream",
    b"xref",
    b"trailer",
    b"startxref",
    b"/Prev 0",
    b"/Prev ",
    b" R",
    b" 0 R",
    b"[",
    b"]",
    b"(",
    b")",
    b"<",
    b">",
    b"/",
    b"%",
    b"%%EOF",
    b"\\",
    b"99999999999",
    b"-1",
    b"0",
    b"/Type /Page",
    b"/Type /Pages",
    b"/Kids [",
    b"/Count 99999999999",
    b"/Length 0",
    b"/Filter /FlateDecode",
    b"/Contents ",
    b"/Resources ",
    b"/Encrypt ",
    b"/Root 1 0 R",
    b"/XRefStm 0",
    b"/Type /ObjStm /N 99999 /First 0",
    b"/W [1 8 8]",
    b"1 0 obj",
    b" null ",
    b"\r\n",
    b"\0",
];

const NUMBERS: &[&[u8]] = &[
    b"0",
    b"-1",
    b"1",
    b"99999999999",
    b"4294967295",
    b"4294967296",
    b"2147483648",
    b"18446744073709551616",
    b"1e308",
    b"-0.0",
    b"65535",
    b"3",
];

/// One mutation of `data` (another seed `other` for splices).
fn mutate_once(rng: &mut Rng, data: &mut Vec<u8>, other: &[u8]) {
    let len = data.len();
    match rng.below(10) {
        // Flip bits.
        0 => {
            for _ in 0..1 + rng.below(8) {
                if !data.is_empty() {
                    let i = rng.pos(data.len());
                    data[i] ^= 1 << rng.below(8);
                }
            }
        }
        // Overwrite bytes with random ones.
        1 => {
            if len > 0 {
                let at = rng.pos(len);
                let end = (at + 1 + rng.below(16)).min(len);
                for b in &mut data[at..end] {
                    *b = rng.next() as u8;
                }
            }
        }
        // Truncate.
        2 => {
            let at = rng.pos(len);
            data.truncate(at);
        }
        // Splice: a prefix of this file and a suffix of the other.
        3 => {
            if !other.is_empty() {
                let a = rng.pos(len);
                let b = rng.pos(other.len());
                data.truncate(a);
                data.extend_from_slice(&other[b..]);
            }
        }
        // Insert a chunk of the other file.
        4 => {
            if !other.is_empty() {
                let b = rng.pos(other.len());
                let n = (1 + rng.below(4096)).min(other.len() - b);
                let at = rng.pos(len);
                data.splice(at..at, other[b..b + n].iter().copied());
            }
        }
        // Duplicate a range.
        5 => {
            if len > 0 {
                let a = rng.pos(len);
                let n = (1 + rng.below(2048)).min(len - a);
                let chunk = data[a..a + n].to_vec();
                let at = rng.pos(len);
                data.splice(at..at, chunk);
            }
        }
        // Remove a range.
        6 => {
            if len > 0 {
                let a = rng.pos(len);
                let n = (1 + rng.below(2048)).min(len - a);
                data.drain(a..a + n);
            }
        }
        // Insert PDF-ish tokens.
        7 | 8 => {
            for _ in 0..1 + rng.below(3) {
                let at = rng.pos(data.len());
                let t = TOKENS[rng.below(TOKENS.len())];
                data.splice(at..at, t.iter().copied());
            }
        }
        // Replace a number with an absurd one.
        _ => {
            let from = rng.pos(len);
            if let Some(start) = data[from..].iter().position(u8::is_ascii_digit) {
                let start = from + start;
                let end = data[start..]
                    .iter()
                    .position(|b| !b.is_ascii_digit())
                    .map_or(data.len(), |e| start + e);
                let n = NUMBERS[rng.below(NUMBERS.len())];
                data.splice(start..end, n.iter().copied());
            }
        }
    }
}

/// The input for one iteration: a seed file mutated one to four times.
fn make_input(seeds: &[Seed], seed: u64, iteration: u64) -> (Vec<u8>, String) {
    let mut rng = Rng::new(seed ^ iteration.wrapping_mul(0xD6E8_FEB8_6659_FD93));
    let a = rng.below(seeds.len());
    let b = rng.below(seeds.len());
    let mut data = seeds[a].bytes.clone();
    for _ in 0..1 + rng.below(4) {
        mutate_once(&mut rng, &mut data, &seeds[b].bytes);
    }
    (data, seeds[a].name.clone())
}

struct Seed {
    name: String,
    bytes: Vec<u8>,
}

fn env_u64(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(v) => {
            let v = v.trim();
            let parsed = v
                .strip_prefix("0x")
                .map_or_else(|| v.parse(), |h| u64::from_str_radix(h, 16));
            parsed.unwrap_or_else(|_| panic!("{name}={v:?} is not a number"))
        }
        Err(_) => default,
    }
}

fn crash_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("../fuzz-crashes");
    std::fs::create_dir_all(&dir).expect("create target/fuzz-crashes");
    dir
}

/// Tight limits: fuzz inputs are small, and a bomb must fail fast.
fn fuzz_stamper() -> Stamper {
    Stamper::new(
        Watermark::new(TEXT).expect("valid text"),
        Options {
            limits: Limits {
                max_decoded_bytes: 16 << 20,
                max_pages: 10_000,
                max_input_bytes: 64 << 20,
                ..Limits::default()
            },
            ..Options::default()
        },
    )
    .expect("valid stamper")
}

/// What one input did.
#[derive(Debug)]
enum Outcome {
    /// Stamped; whether stamping the output again worked too.
    Stamped { again: Result<(), &'static str> },
    /// A typed error (its code).
    Refused(&'static str),
}

fn run_one(stamper: &Stamper, input: &[u8]) -> Outcome {
    match stamper.stamp(input) {
        Ok(s) => {
            let output = s.to_vec(input);
            let again = match stamper.stamp(&output) {
                Ok(_) => Ok(()),
                Err(e) => Err(e.code()),
            };
            Outcome::Stamped { again }
        }
        Err(e) => Outcome::Refused(e.code()),
    }
}

/// Runs `iters` mutated inputs from `seeds` on a worker thread, failing on
/// a panic or an input that takes longer than [`MAX_PER_INPUT`].
fn fuzz(test: &str, seeds: Vec<Seed>, default_iters: u64) {
    assert!(!seeds.is_empty());
    install_panic_hook();
    let iters = env_u64("PEEDY_FUZZ_ITERS", default_iters);
    let seed = env_u64("PEEDY_FUZZ_SEED", DEFAULT_SEED);
    let from = env_u64("PEEDY_FUZZ_FROM", 0);
    let seeds = Arc::new(seeds);
    let dir = crash_dir();
    let progress = dir.join(format!("{test}.in-progress"));

    let (to_worker, inputs) = mpsc::channel::<Vec<u8>>();
    let (to_main, outcomes) = mpsc::channel::<Result<Outcome, String>>();
    let worker = thread::Builder::new()
        .name(format!("{test}-worker"))
        .spawn(move || {
            let stamper = fuzz_stamper();
            for input in inputs {
                let r = catch_unwind(AssertUnwindSafe(|| run_one(&stamper, &input))).map_err(|p| {
                    let msg = p
                        .downcast_ref::<&str>()
                        .map(|s| (*s).to_owned())
                        .or_else(|| p.downcast_ref::<String>().cloned())
                        .unwrap_or_else(|| "a panic".into());
                    let at = LAST_PANIC
                        .with(|l| l.borrow_mut().take())
                        .unwrap_or_else(|| "unknown location".into());
                    format!("{msg} at {at}")
                });
                if to_main.send(r).is_err() {
                    break;
                }
            }
        })
        .expect("spawn the fuzz worker");

    let started = Instant::now();
    let mut stamped = 0u64;
    // Panics by message and location: (count, first iteration, saved input).
    let mut panics: std::collections::BTreeMap<String, (u64, u64, PathBuf)> = Default::default();
    let mut again_failed: Vec<(u64, String, &'static str, PathBuf)> = Vec::new();
    let mut refused: std::collections::BTreeMap<&'static str, u64> = Default::default();
    let mut slowest = (Duration::ZERO, 0u64);
    for i in from..from.saturating_add(iters) {
        let (input, origin) = make_input(&seeds, seed, i);
        let replay = format!(
            "PEEDY_FUZZ_SEED={seed:#x} PEEDY_FUZZ_FROM={i} PEEDY_FUZZ_ITERS=1 \
             cargo test -p peedy-stamp --test fuzz {test}"
        );
        // Tens of microseconds: cheap next to stamping.
        let _ = std::fs::write(&progress, format!("{replay}\n(mutated from {origin})\n"));
        let save = |why: &str| -> PathBuf {
            let path = dir.join(format!("{test}-{seed:x}-{i}.pdf"));
            let _ = std::fs::write(&path, &input);
            eprintln!("{why}: input from {origin} saved to {}", path.display());
            path
        };
        let t = Instant::now();
        to_worker.send(input.clone()).expect("the worker is alive");
        match outcomes.recv_timeout(MAX_PER_INPUT) {
            Ok(Ok(Outcome::Stamped { again })) => {
                stamped += 1;
                if let Err(code) = again {
                    let path = save(&format!("output not re-stampable ({code})"));
                    again_failed.push((i, origin, code, path));
                }
            }
            Ok(Ok(Outcome::Refused(code))) => *refused.entry(code).or_default() += 1,
            Ok(Err(msg)) => {
                // Keep going: one run reports every distinct panic.
                match panics.get_mut(&msg) {
                    Some(p) => p.0 += 1,
                    None => {
                        let path = save(&format!("panic: {msg}"));
                        panics.insert(msg, (1, i, path));
                    }
                }
            }
            Err(_) => {
                let path = save("hang");
                panic!(
                    "iteration {i} (seed {seed:#x}, from {origin}) took longer than {:?}\n\
                     input: {}\nreplay: {replay}",
                    MAX_PER_INPUT,
                    path.display()
                );
            }
        }
        let took = t.elapsed();
        if took > slowest.0 {
            slowest = (took, i);
        }
    }
    drop(to_worker);
    let _ = worker.join();
    let _ = std::fs::remove_file(&progress);
    eprintln!(
        "{test}: {iters} inputs in {:.1?} (slowest: iteration {} in {:.1?}); \
         stamped {stamped}, refused {refused:?}; output not re-stampable: {}; \
         distinct panics: {}",
        started.elapsed(),
        slowest.1,
        slowest.0,
        again_failed.len(),
        panics.len()
    );
    if !panics.is_empty() {
        let list: Vec<String> = panics
            .iter()
            .map(|(msg, (n, i, path))| {
                format!(
                    "{msg}\n    {n}× — first: iteration {i}, input {}\n    replay: \
                     PEEDY_FUZZ_SEED={seed:#x} PEEDY_FUZZ_FROM={i} PEEDY_FUZZ_ITERS=1 \
                     cargo test -p peedy-stamp --test fuzz {test}",
                    path.display()
                )
            })
            .collect();
        panic!(
            "{test}: the engine panicked in {} distinct places (seed {seed:#x}):\n{}",
            panics.len(),
            list.join("\n")
        );
    }
    // The mutations must not be so destructive that nothing gets through.
    if iters >= 500 {
        assert!(
            stamped * 10 >= iters,
            "only {stamped} of {iters} mutated inputs stamped: the fuzzer is not reaching the engine"
        );
        assert!(
            refused.len() >= 2,
            "only these errors were seen: {refused:?}"
        );
    }
    // A stamped output must itself be stampable: the update the engine
    // writes on any input it accepts has to be a readable PDF.
    assert!(
        again_failed.is_empty(),
        "{} stamped outputs could not be stamped again, e.g. {:?}",
        again_failed.len(),
        &again_failed[..again_failed.len().min(5)]
    );
}

/// Mutations of every corpus file.
#[test]
fn mutated_corpus_files_never_panic_or_hang() {
    let seeds: Vec<Seed> = corpus()
        .iter()
        .map(|p| Seed {
            name: file_name(p),
            bytes: std::fs::read(p).expect("read corpus file"),
        })
        .collect();
    fuzz("corpus", seeds, CORPUS_ITERS);
}

/// Mutations of generated fixtures: small files, so most mutations land in
/// structure (xref, trailer, page tree), including encrypted ones and ones
/// with object and cross-reference streams (made with qpdf).
#[test]
fn mutated_fixtures_never_panic_or_hang() {
    let plain = pages(3);
    let rotated = Fixture::new()
        .node_rotate(90)
        .page(PageSpec::with_text("a").crop_box([10.0, 10.0, 300.0, 300.0]))
        .page(PageSpec::blank().rotate(270).own_resources())
        .build();
    let objstm = qpdf_rewrite(&plain, &["--object-streams=generate"]);
    let seeds = vec![
        Seed {
            name: "fixture-3-pages".into(),
            bytes: plain.clone(),
        },
        Seed {
            name: "fixture-rotated".into(),
            bytes: rotated,
        },
        Seed {
            name: "fixture-object-streams".into(),
            bytes: objstm.clone(),
        },
        Seed {
            name: "fixture-rc4-40".into(),
            bytes: qpdf_encrypt(&plain, "", "40", &["--allow-weak-crypto"]),
        },
        Seed {
            name: "fixture-aes-128".into(),
            bytes: qpdf_encrypt(&plain, "", "128", &["--use-aes=y"]),
        },
        Seed {
            name: "fixture-aes-256-objstm".into(),
            bytes: qpdf_encrypt(&objstm, "", "256", &[]),
        },
        Seed {
            name: "fixture-stamped".into(),
            bytes: stamp_default(&plain).0,
        },
    ];
    fuzz("fixtures", seeds, FIXTURE_ITERS);
}

/// `qpdf ARGS in out`.
fn qpdf_rewrite(pdf: &[u8], args: &[&str]) -> Vec<u8> {
    let f = temp_pdf(pdf);
    let out = tempfile::Builder::new()
        .suffix(".pdf")
        .tempfile()
        .expect("create a temporary file");
    let mut a: Vec<&std::ffi::OsStr> = args.iter().map(|s| s.as_ref()).collect();
    a.push(f.path().as_os_str());
    a.push(out.path().as_os_str());
    let o = run_tool("qpdf", "qpdf", &a);
    assert!(
        o.status.success(),
        "qpdf {args:?} failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    std::fs::read(out.path()).expect("read qpdf output")
}

/// The mutator itself: deterministic, and it does change inputs.
#[test]
fn mutations_are_deterministic_and_varied() {
    let seeds = vec![
        Seed {
            name: "a".into(),
            bytes: one_page(),
        },
        Seed {
            name: "b".into(),
            bytes: pages(2),
        },
    ];
    let first: Vec<Vec<u8>> = (0..200).map(|i| make_input(&seeds, 7, i).0).collect();
    let again: Vec<Vec<u8>> = (0..200).map(|i| make_input(&seeds, 7, i).0).collect();
    assert_eq!(first, again);
    let unchanged = first
        .iter()
        .filter(|d| **d == seeds[0].bytes || **d == seeds[1].bytes)
        .count();
    assert!(unchanged < 10, "{unchanged} of 200 inputs were not mutated");
    let distinct: std::collections::HashSet<&Vec<u8>> = first.iter().collect();
    assert!(
        distinct.len() > 190,
        "only {} distinct inputs",
        distinct.len()
    );
}
