//! The C2SP x509-limbo conformance suite against [`mtls_verify::Verifier`].
//!
//! Every testcase of `data/limbo.json.gz` (see `data/README.md`) is run, or counted as not
//! expressible with its reason. The test fails when
//! - fewer expected-SUCCESS cases are accepted, or fewer expected-FAILURE cases refused,
//!   than the thresholds below;
//! - a case limbo expects to fail is accepted (a false accept) and `data/limbo-known.txt`
//!   does not list it, or that file lists an id the suite no longer has;
//! - the verifier panics on any case.
//!
//! The tallies go to stderr (`cargo test -p mtls-verify --test limbo -- --nocapture`), and
//! one line per disagreement to `target/limbo-report.md` (or `$MTLS_LIMBO_REPORT`).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::io::Read;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use time::OffsetDateTime;

#[path = "limbo/suite.rs"]
mod suite;

use suite::{Case, Expected, Suite, Verdict};

// A ratchet, just under what the verifier reached when this harness was written (923 of
// 927 expected-SUCCESS cases accepted, 8,810 of 8,851 expected-FAILURE cases refused):
// raise them as it improves. OpenSSL 3.0.19 on the same cases (`data/openssl_anchor.py`)
// reaches 86.8% and 98.7%.
/// Expected-SUCCESS cases accepted, in percent, at least.
const SUCCESS_THRESHOLD: f64 = 99.5;
/// Expected-FAILURE cases refused, in percent, at least.
const FAILURE_THRESHOLD: f64 = 99.5;

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/limbo.json.gz");
const KNOWN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/limbo-known.txt");

/// What happened to one case.
enum Outcome {
    NotExpressible(String),
    Ran { verdict: Verdict, took: Duration },
    Panicked(String),
}

#[test]
fn limbo() {
    let started = Instant::now();
    let suite = load(Path::new(DATA));
    let loaded = started.elapsed();
    let outcomes = run_all(&suite.testcases);
    let known = known_false_accepts(Path::new(KNOWN));
    let tally = Tally::of(&suite.testcases, &outcomes, &known);

    let report = tally.report(&suite.testcases, &outcomes, &known);
    let report_path = report_path();
    if let Some(dir) = report_path.parent() {
        std::fs::create_dir_all(dir).expect("creating the report's directory");
    }
    std::fs::write(&report_path, report).expect("writing the limbo report");

    eprintln!(
        "limbo: {} cases ({} run, {} not expressible) in {:.1?} (load {:.1?})",
        suite.testcases.len(),
        tally.run,
        tally.not_expressible.values().map(Vec::len).sum::<usize>(),
        started.elapsed(),
        loaded
    );
    eprintln!("{}", tally.summary());
    eprintln!("limbo: report: {}", report_path.display());

    let ids: BTreeSet<&str> = suite.testcases.iter().map(|c| c.id.as_str()).collect();
    let gone: Vec<&String> = known
        .keys()
        .filter(|id| !ids.contains(id.as_str()))
        .collect();
    assert!(
        gone.is_empty(),
        "limbo-known.txt lists ids the suite does not have: {gone:?}"
    );
    assert!(
        tally.panics.is_empty(),
        "the verifier panicked on {} case(s): {:?}",
        tally.panics.len(),
        tally.panics
    );
    let unlisted: Vec<&str> = tally
        .false_accepts
        .iter()
        .filter(|id| !known.contains_key(**id))
        .copied()
        .collect();
    assert!(
        unlisted.is_empty(),
        "{} false accept(s) not in limbo-known.txt (fix, or list with a reason): {unlisted:?}",
        unlisted.len()
    );
    assert!(
        tally.success_rate() >= SUCCESS_THRESHOLD,
        "expected-SUCCESS cases accepted: {:.1}% < {SUCCESS_THRESHOLD}%",
        tally.success_rate()
    );
    assert!(
        tally.failure_rate() >= FAILURE_THRESHOLD,
        "expected-FAILURE cases refused: {:.1}% < {FAILURE_THRESHOLD}%",
        tally.failure_rate()
    );
}

/// The suite, decompressed and parsed once.
fn load(path: &Path) -> Suite {
    let file =
        std::fs::File::open(path).unwrap_or_else(|e| panic!("opening {}: {e}", path.display()));
    let mut json = Vec::with_capacity(48 << 20);
    flate2::read::GzDecoder::new(std::io::BufReader::new(file))
        .read_to_end(&mut json)
        .unwrap_or_else(|e| panic!("decompressing {}: {e}", path.display()));
    serde_json::from_slice(&json).unwrap_or_else(|e| panic!("parsing {}: {e}", path.display()))
}

/// Every case, on every core; outcomes in the suite's order.
fn run_all(cases: &[Case]) -> Vec<Outcome> {
    let now = OffsetDateTime::now_utc();
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    let chunk = cases.len().div_ceil(workers).max(1);
    std::thread::scope(|scope| {
        let handles: Vec<_> = cases
            .chunks(chunk)
            .map(|part| {
                scope.spawn(move || part.iter().map(|c| run_one(c, now)).collect::<Vec<_>>())
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("a limbo worker thread died"))
            .collect::<Vec<Outcome>>()
    })
}

fn run_one(case: &Case, now: OffsetDateTime) -> Outcome {
    let run = match case.run() {
        Ok(run) => run,
        Err(reason) => return Outcome::NotExpressible(reason),
    };
    let start = Instant::now();
    match panic::catch_unwind(AssertUnwindSafe(|| run.verify(now))) {
        Ok(verdict) => Outcome::Ran {
            verdict,
            took: start.elapsed(),
        },
        Err(payload) => Outcome::Panicked(
            payload
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_default(),
        ),
    }
}

/// `limbo-known.txt`: id -> reason. Every entry needs a `# reason`.
fn known_false_accepts(path: &Path) -> BTreeMap<String, String> {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let mut known = BTreeMap::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (id, reason) = line.split_once('#').unwrap_or((line, ""));
        let (id, reason) = (id.trim(), reason.trim());
        assert!(
            !reason.is_empty(),
            "{}:{}: {id} has no `# reason`",
            path.display(),
            n + 1
        );
        let previous = known.insert(id.to_owned(), reason.to_owned());
        assert!(
            previous.is_none(),
            "{}:{}: {id} is listed twice",
            path.display(),
            n + 1
        );
    }
    known
}

/// `$MTLS_LIMBO_REPORT`, or `limbo-report.md` in the target directory this test runs from
/// (the binary is `target/<profile>/deps/limbo-<hash>`).
fn report_path() -> PathBuf {
    if let Some(path) = std::env::var_os("MTLS_LIMBO_REPORT") {
        return PathBuf::from(path);
    }
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.ancestors().nth(3).map(Path::to_path_buf))
        .unwrap_or_else(std::env::temp_dir)
        .join("limbo-report.md")
}

/// The counts, and the ids behind them.
struct Tally<'a> {
    run: usize,
    success_total: usize,
    success_passed: usize,
    failure_total: usize,
    failure_passed: usize,
    false_accepts: Vec<&'a str>,
    false_refusals: Vec<&'a str>,
    panics: Vec<(&'a str, String)>,
    /// Reason -> ids.
    not_expressible: BTreeMap<&'a str, Vec<&'a str>>,
    /// Check name -> (expected-FAILURE cases refused by it, expected-SUCCESS refused by it).
    by_check: BTreeMap<&'a str, (usize, usize)>,
    /// Listed in limbo-known.txt but refused now.
    stale_known: Vec<&'a str>,
}

impl<'a> Tally<'a> {
    fn of(cases: &'a [Case], outcomes: &'a [Outcome], known: &BTreeMap<String, String>) -> Self {
        let mut t = Tally {
            run: 0,
            success_total: 0,
            success_passed: 0,
            failure_total: 0,
            failure_passed: 0,
            false_accepts: Vec::new(),
            false_refusals: Vec::new(),
            panics: Vec::new(),
            not_expressible: BTreeMap::new(),
            by_check: BTreeMap::new(),
            stale_known: Vec::new(),
        };
        for (case, outcome) in cases.iter().zip(outcomes) {
            let id = case.id.as_str();
            match outcome {
                Outcome::NotExpressible(reason) => {
                    t.not_expressible.entry(reason).or_default().push(id);
                }
                Outcome::Panicked(message) => t.panics.push((id, message.clone())),
                Outcome::Ran { verdict, .. } => {
                    t.run += 1;
                    if let Verdict::Refused { check, .. } = verdict {
                        let entry = t.by_check.entry(check).or_default();
                        match case.expected_result {
                            Expected::Failure => entry.0 += 1,
                            Expected::Success => entry.1 += 1,
                        }
                    }
                    match (case.expected_result, verdict.accepted()) {
                        (Expected::Success, true) => {
                            t.success_total += 1;
                            t.success_passed += 1;
                        }
                        (Expected::Success, false) => {
                            t.success_total += 1;
                            t.false_refusals.push(id);
                        }
                        (Expected::Failure, false) => {
                            t.failure_total += 1;
                            t.failure_passed += 1;
                            if known.contains_key(id) {
                                t.stale_known.push(id);
                            }
                        }
                        (Expected::Failure, true) => {
                            t.failure_total += 1;
                            t.false_accepts.push(id);
                        }
                    }
                }
            }
        }
        t
    }

    fn success_rate(&self) -> f64 {
        percent(self.success_passed, self.success_total)
    }

    fn failure_rate(&self) -> f64 {
        percent(self.failure_passed, self.failure_total)
    }

    fn summary(&self) -> String {
        let mut s = format!(
            "limbo: expected SUCCESS: {} accepted, {} refused ({:.1}% pass; threshold {SUCCESS_THRESHOLD}%)\n\
             limbo: expected FAILURE: {} refused, {} accepted ({:.1}% pass; threshold {FAILURE_THRESHOLD}%)",
            self.success_passed,
            self.success_total - self.success_passed,
            self.success_rate(),
            self.failure_passed,
            self.failure_total - self.failure_passed,
            self.failure_rate(),
        );
        for (reason, ids) in &self.not_expressible {
            let _ = write!(s, "\nlimbo: not expressible: {} x {reason}", ids.len());
        }
        if !self.stale_known.is_empty() {
            let _ = write!(
                s,
                "\nlimbo: now refused, remove from limbo-known.txt: {:?}",
                self.stale_known
            );
        }
        s
    }

    fn report(
        &self,
        cases: &[Case],
        outcomes: &[Outcome],
        known: &BTreeMap<String, String>,
    ) -> String {
        let verdicts: BTreeMap<&str, (&Case, &Outcome)> = cases
            .iter()
            .zip(outcomes)
            .map(|(c, o)| (c.id.as_str(), (c, o)))
            .collect();
        // " [features] (conflicts with `other`)", to read a disagreement at a glance.
        let features = |id: &str| {
            let case = verdicts[id].0;
            let mut s = String::new();
            if !case.features.is_empty() {
                let _ = write!(s, " [{}]", case.features.join(", "));
            }
            if !case.conflicts_with.is_empty() {
                let _ = write!(
                    s,
                    " (conflicts with `{}`)",
                    case.conflicts_with.join("`, `")
                );
            }
            s
        };
        let ours = |id: &str| match verdicts[id].1 {
            Outcome::Ran { verdict, .. } => verdict.describe(),
            _ => String::new(),
        };

        let mut r = String::new();
        let _ = writeln!(r, "# x509-limbo against mtls-verify\n");
        let _ = writeln!(
            r,
            "Suite: `crates/verify/tests/data/limbo.json.gz`, {} cases.\n",
            cases.len()
        );
        let _ = writeln!(r, "```\n{}\n```\n", self.summary());

        let _ = writeln!(r, "## Refusals by check\n");
        let _ = writeln!(
            r,
            "| check | expected FAILURE (right) | expected SUCCESS (wrong) |"
        );
        let _ = writeln!(r, "|---|---:|---:|");
        for (check, (right, wrong)) in &self.by_check {
            let _ = writeln!(r, "| {check} | {right} | {wrong} |");
        }

        let _ = writeln!(
            r,
            "\n## False accepts: expected FAILURE, we accepted ({})\n",
            self.false_accepts.len()
        );
        for id in &self.false_accepts {
            let note = known
                .get(*id)
                .map_or(" **NOT in limbo-known.txt**".to_owned(), |why| {
                    format!(" (known: {why})")
                });
            let _ = writeln!(
                r,
                "- `{id}`{}: expected FAILURE, ours: OK{note}",
                features(id)
            );
        }

        let _ = writeln!(
            r,
            "\n## False refusals: expected SUCCESS, we refused ({})\n",
            self.false_refusals.len()
        );
        for id in &self.false_refusals {
            let _ = writeln!(
                r,
                "- `{id}`{}: expected SUCCESS, ours: {}",
                features(id),
                ours(id)
            );
        }

        if !self.panics.is_empty() {
            let _ = writeln!(r, "\n## Panics ({})\n", self.panics.len());
            for (id, message) in &self.panics {
                let _ = writeln!(r, "- `{id}`: {message}");
            }
        }

        let _ = writeln!(r, "\n## Not expressible\n");
        for (reason, ids) in &self.not_expressible {
            let _ = writeln!(r, "- {reason} ({}): {}", ids.len(), ids.join(", "));
        }

        let mut slow: Vec<(&str, Duration)> = cases
            .iter()
            .zip(outcomes)
            .filter_map(|(c, o)| match o {
                Outcome::Ran { took, .. } => Some((c.id.as_str(), *took)),
                _ => None,
            })
            .collect();
        slow.sort_by_key(|&(_, took)| std::cmp::Reverse(took));
        let _ = writeln!(r, "\n## Slowest cases\n");
        for (id, took) in slow.iter().take(10) {
            let _ = writeln!(r, "- `{id}`: {took:.1?}: {}", ours(id));
        }
        r
    }
}

fn percent(part: usize, whole: usize) -> f64 {
    if whole == 0 {
        100.0
    } else {
        part as f64 * 100.0 / whole as f64
    }
}
