//! `loadgen`: the closed-loop HTTP/1.1 load generator of Minsheng's bench harness (`bench/run.sh`).
//!
//! Each of `--connections` threads holds one keep-alive connection and sends its next request as
//! soon as the previous answer is read in full, for `--warmup` seconds (not recorded) and then
//! `--duration` seconds (recorded). Every answer whose status is not the expected one, and every
//! I/O failure, is an error. It prints one JSON object: throughput, latency percentiles, errors,
//! and its own CPU time (and that of any `--watch`ed processes) over the recorded window, so a
//! reader can see that the generator is not what limits the result.
//!
//! Std only, no dependencies: the harness builds it in a few seconds and its cost per request is
//! a write, a read and a little parsing.
//!
//! ```text
//! loadgen run --stage create|act|get|path|healthz --addr 127.0.0.1:8080 [--token T] [--connections 8]
//!             [--duration 20] [--warmup 3] [--input FILE] [--path P] [--categories a,b] [--watch name=pid,...]
//! loadgen coldstart --addr 127.0.0.1:8080 --runs 5 --fresh DB_FILE -- COMMAND ARGS...
//! loadgen pgbench-log [--warmup S] FILE...      latency and throughput from pgbench --log files
//! ```

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("run") => run(&args[1..]),
        Some("coldstart") => coldstart(&args[1..]),
        Some("pgbench-log") => pgbench_log(&args[1..]),
        _ => Err("usage: loadgen run|coldstart|pgbench-log … (see the source's header)".to_owned()),
    };
    if let Err(e) = result {
        eprintln!("loadgen: {e}");
        std::process::exit(2);
    }
}

// ---------------------------------------------------------------------------------------------
// Options

#[derive(Clone)]
struct Opts {
    stage: String,
    addr: String,
    token: Option<String>,
    connections: usize,
    duration: f64,
    warmup: f64,
    input: Option<String>,
    path: Option<String>,
    categories: Vec<String>,
    watch: Vec<(String, Vec<u32>)>,
    watch_comm: Vec<String>,
    runs: usize,
    fresh: Option<String>,
    command: Vec<String>,
    files: Vec<String>,
}

fn parse_opts(args: &[String]) -> Result<Opts, String> {
    let mut o = Opts {
        stage: String::new(),
        addr: "127.0.0.1:8080".to_owned(),
        token: None,
        connections: 8,
        duration: 20.0,
        warmup: 3.0,
        input: None,
        path: None,
        categories: Vec::new(),
        watch: Vec::new(),
        watch_comm: Vec::new(),
        runs: 5,
        fresh: None,
        command: Vec::new(),
        files: Vec::new(),
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut val = || it.next().cloned().ok_or_else(|| format!("{a} needs a value"));
        match a.as_str() {
            "--stage" => o.stage = val()?,
            "--addr" => o.addr = val()?,
            "--token" => o.token = Some(val()?),
            "--connections" | "-c" => o.connections = val()?.parse().map_err(|_| "bad --connections")?,
            "--duration" | "-d" => o.duration = val()?.parse().map_err(|_| "bad --duration")?,
            "--warmup" => o.warmup = val()?.parse().map_err(|_| "bad --warmup")?,
            "--input" => o.input = Some(val()?),
            "--path" => o.path = Some(val()?),
            "--categories" => o.categories = val()?.split(',').map(str::to_owned).collect(),
            "--watch" => {
                // name=pid,pid,…
                let v = val()?;
                let (name, pids) = v.split_once('=').ok_or("--watch name=pid,…")?;
                let pids = pids.split(',').filter(|p| !p.is_empty()).map(|p| p.parse().map_err(|_| "bad pid"));
                o.watch.push((name.to_owned(), pids.collect::<Result<_, _>>()?));
            }
            "--watch-comm" => o.watch_comm.push(val()?),
            "--runs" => o.runs = val()?.parse().map_err(|_| "bad --runs")?,
            "--fresh" => o.fresh = Some(val()?),
            "--" => {
                o.command = it.by_ref().cloned().collect();
            }
            other if other.starts_with("--") => return Err(format!("unknown option {other}")),
            other => o.files.push(other.to_owned()),
        }
    }
    Ok(o)
}

// ---------------------------------------------------------------------------------------------
// A minimal HTTP/1.1 client: one keep-alive connection, Content-Length or chunked answers.

struct Conn {
    addr: String,
    stream: Option<TcpStream>,
    buf: Vec<u8>,
}

struct Answer {
    status: u16,
    body: Vec<u8>,
}

impl Conn {
    fn new(addr: &str) -> Conn {
        Conn { addr: addr.to_owned(), stream: None, buf: Vec::with_capacity(16 * 1024) }
    }

    fn stream(&mut self) -> io::Result<&mut TcpStream> {
        if self.stream.is_none() {
            let s = TcpStream::connect(&self.addr)?;
            s.set_nodelay(true)?;
            s.set_read_timeout(Some(Duration::from_secs(30)))?;
            self.buf.clear();
            self.stream = Some(s);
        }
        self.stream.as_mut().ok_or_else(|| io::Error::other("no stream"))
    }

    /// Sends one request and reads its whole answer. On any failure the connection is dropped
    /// (the next request opens a new one).
    fn send(&mut self, request: &[u8]) -> io::Result<Answer> {
        let result = self.exchange(request);
        if result.is_err() {
            self.stream = None;
        }
        result
    }

    fn fill(&mut self) -> io::Result<()> {
        let mut chunk = [0u8; 16 * 1024];
        let stream = self.stream.as_mut().ok_or_else(|| io::Error::other("no stream"))?;
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "connection closed by the server"));
        }
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(())
    }

    fn exchange(&mut self, request: &[u8]) -> io::Result<Answer> {
        self.stream()?.write_all(request)?;
        // Head.
        let head_end = loop {
            if let Some(i) = find(&self.buf, b"\r\n\r\n") {
                break i + 4;
            }
            self.fill()?;
        };
        let head = std::str::from_utf8(&self.buf[..head_end]).map_err(|_| io::Error::other("non-UTF-8 head"))?;
        let status: u16 = head
            .get(9..12)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| io::Error::other(format!("bad status line: {:?}", head.lines().next())))?;
        let mut length = None;
        let mut chunked = false;
        let mut close = false;
        for line in head.split("\r\n").skip(1) {
            let Some((name, value)) = line.split_once(':') else { continue };
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                length = value.parse::<usize>().ok();
            } else if name.eq_ignore_ascii_case("transfer-encoding") && value.eq_ignore_ascii_case("chunked") {
                chunked = true;
            } else if name.eq_ignore_ascii_case("connection") && value.eq_ignore_ascii_case("close") {
                close = true;
            }
        }
        self.buf.drain(..head_end);
        let body = if chunked {
            self.read_chunked()?
        } else {
            let n = length.unwrap_or(0);
            while self.buf.len() < n {
                self.fill()?;
            }
            self.buf.drain(..n).collect()
        };
        if close {
            self.stream = None;
        }
        Ok(Answer { status, body })
    }

    fn read_chunked(&mut self) -> io::Result<Vec<u8>> {
        let mut body = Vec::new();
        loop {
            let line_end = loop {
                if let Some(i) = find(&self.buf, b"\r\n") {
                    break i;
                }
                self.fill()?;
            };
            let size_text = std::str::from_utf8(&self.buf[..line_end]).map_err(|_| io::Error::other("bad chunk"))?;
            let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
                .map_err(|_| io::Error::other("bad chunk size"))?;
            self.buf.drain(..line_end + 2);
            while self.buf.len() < size + 2 {
                self.fill()?;
            }
            body.extend_from_slice(&self.buf[..size]);
            self.buf.drain(..size + 2);
            if size == 0 {
                return Ok(body);
            }
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

// ---------------------------------------------------------------------------------------------
// Work per stage

/// What one thread sends next, and the status it expects back.
enum Work {
    /// Fixed request.
    Fixed(Vec<u8>, u16),
    /// `POST /api/v1/cases` with a fresh `Idempotency-Key`, a random township and category.
    Create { jurisdictions: Arc<Vec<String>>, categories: Arc<Vec<String>> },
    /// `POST …/actions/assign` on the next unused received case (`If-Match: "1"`).
    Act { cases: Arc<Vec<(String, String)>>, next: Arc<AtomicUsize> },
    /// `GET /api/v1/cases/{id}` of a random seeded case.
    Get { ids: Arc<Vec<String>> },
}

/// xorshift64*: cheap, good enough to spread keys.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

struct Ctx {
    host: String,
    auth: String,
    run_id: u64,
}

impl Ctx {
    fn get(&self, path: &str) -> Vec<u8> {
        format!("GET {path} HTTP/1.1\r\nHost: {}\r\n{}\r\n", self.host, self.auth).into_bytes()
    }

    fn post(&self, path: &str, extra: &str, body: &str) -> Vec<u8> {
        format!(
            "POST {path} HTTP/1.1\r\nHost: {}\r\n{}Content-Type: application/json\r\n{extra}Content-Length: {}\r\n\r\n{body}",
            self.host,
            self.auth,
            body.len()
        )
        .into_bytes()
    }
}

impl Work {
    /// The next request, the status it should get, or `None` when the work is used up.
    fn next(&self, ctx: &Ctx, rng: &mut Rng, thread: usize, seq: u64) -> Option<(Vec<u8>, u16)> {
        match self {
            Work::Fixed(req, status) => Some((req.clone(), *status)),
            Work::Create { jurisdictions, categories } => {
                let j = &jurisdictions[rng.below(jurisdictions.len())];
                let c = &categories[rng.below(categories.len())];
                let body = format!(
                    concat!(
                        r#"{{"kind":"complaint","channel":"hotline","title":"村里自来水停水三天","#,
                        r#""description":"凤凰街道某村自来水停水三天，村民生活用水困难，请尽快处理。","#,
                        r#""category_code":"{}","jurisdiction_code":"{}","#,
                        r#""complainant":{{"name":"张三丰","phone":"13812345678"}}}}"#
                    ),
                    c, j
                );
                let key = format!("Idempotency-Key: bench-{:x}-{thread}-{seq}\r\n", ctx.run_id);
                Some((ctx.post("/api/v1/cases", &key, &body), 201))
            }
            Work::Act { cases, next } => {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let (case, dept) = cases.get(i)?;
                let body = format!(r#"{{"department_id":"{dept}","note":"请三日内处理"}}"#);
                let extra = format!("If-Match: \"1\"\r\nIdempotency-Key: bench-{:x}-{thread}-{seq}\r\n", ctx.run_id);
                Some((ctx.post(&format!("/api/v1/cases/{case}/actions/assign"), &extra, &body), 200))
            }
            Work::Get { ids } => Some((ctx.get(&format!("/api/v1/cases/{}", ids[rng.below(ids.len())])), 200)),
        }
    }
}

fn read_lines(path: &str) -> Result<Vec<String>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
    Ok(text.lines().map(str::trim).filter(|l| !l.is_empty()).map(str::to_owned).collect())
}

/// What one thread saw in the recorded window.
#[derive(Default)]
struct ThreadResult {
    latencies_us: Vec<u32>,
    warmup_requests: u64,
    errors: u64,
    exhausted: bool,
    error_samples: BTreeMap<String, u64>,
}

fn run(args: &[String]) -> Result<(), String> {
    let o = parse_opts(args)?;
    let ctx = Arc::new(Ctx {
        host: o.addr.clone(),
        auth: o.token.as_ref().map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default(),
        run_id: SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0),
    });
    let work = Arc::new(match o.stage.as_str() {
        "healthz" => Work::Fixed(ctx.get("/healthz"), 200),
        "path" => Work::Fixed(ctx.get(o.path.as_deref().ok_or("--path is required")?), 200),
        "create" => Work::Create {
            jurisdictions: Arc::new(read_lines(o.input.as_deref().ok_or("--input (jurisdiction codes)")?)?),
            categories: Arc::new(o.categories.clone()),
        },
        "act" => {
            let lines = read_lines(o.input.as_deref().ok_or("--input (case_id dept_id lines)")?)?;
            let cases = lines
                .iter()
                .filter_map(|l| l.split_once(char::is_whitespace).map(|(a, b)| (a.to_owned(), b.trim().to_owned())))
                .collect();
            Work::Act { cases: Arc::new(cases), next: Arc::new(AtomicUsize::new(0)) }
        }
        "get" => Work::Get { ids: Arc::new(read_lines(o.input.as_deref().ok_or("--input (case ids)")?)?) },
        other => return Err(format!("unknown stage {other:?}")),
    });
    if let Work::Create { jurisdictions, categories } = &*work {
        if jurisdictions.is_empty() || categories.is_empty() {
            return Err("create needs jurisdictions (--input) and --categories".to_owned());
        }
    }

    let warmup = Duration::from_secs_f64(o.warmup);
    let duration = Duration::from_secs_f64(o.duration);
    let barrier = Arc::new(Barrier::new(o.connections + 1));
    let start = Arc::new(std::sync::OnceLock::<Instant>::new());
    let mut handles = Vec::new();
    for thread in 0..o.connections {
        let (ctx, work, barrier, start, addr) =
            (ctx.clone(), work.clone(), barrier.clone(), start.clone(), o.addr.clone());
        handles.push(std::thread::spawn(move || {
            let mut conn = Conn::new(&addr);
            let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ ((thread as u64 + 1) * 0x1000_0001) ^ ctx.run_id);
            let mut r = ThreadResult { latencies_us: Vec::with_capacity(1 << 16), ..ThreadResult::default() };
            barrier.wait();
            let Some(&t0) = start.get() else { return r };
            let recorded_from = t0 + warmup;
            let end = recorded_from + duration;
            let mut seq = 0u64;
            while Instant::now() < end {
                seq += 1;
                let Some((request, expect)) = work.next(&ctx, &mut rng, thread, seq) else {
                    r.exhausted = true;
                    break;
                };
                let sent = Instant::now();
                let outcome = conn.send(&request);
                let done = Instant::now();
                let ok = match &outcome {
                    Ok(a) if a.status == expect => true,
                    Ok(a) => {
                        let body = String::from_utf8_lossy(&a.body);
                        let sample: String = body.chars().take(200).collect();
                        *r.error_samples.entry(format!("{} {sample}", a.status)).or_default() += 1;
                        false
                    }
                    Err(e) => {
                        *r.error_samples.entry(format!("io: {e}")).or_default() += 1;
                        false
                    }
                };
                if !ok {
                    r.errors += 1;
                }
                if sent >= end {
                    break;
                } else if sent >= recorded_from {
                    if ok {
                        r.latencies_us.push(u32::try_from((done - sent).as_micros()).unwrap_or(u32::MAX));
                    }
                } else {
                    r.warmup_requests += 1;
                }
            }
            r
        }));
    }
    let t0 = Instant::now();
    let _ = start.set(t0);
    barrier.wait();
    std::thread::sleep((t0 + warmup).saturating_duration_since(Instant::now()));
    let (gen1, watch1) = (cpu_of_self(), watch_cpu(&o));
    std::thread::sleep((t0 + warmup + duration).saturating_duration_since(Instant::now()));
    let (gen2, watch2) = (cpu_of_self(), watch_cpu(&o));
    let mut all = Vec::new();
    let (mut errors, mut warm, mut exhausted) = (0u64, 0u64, false);
    let mut samples: BTreeMap<String, u64> = BTreeMap::new();
    for h in handles {
        let r = h.join().map_err(|_| "a worker thread panicked")?;
        all.extend_from_slice(&r.latencies_us);
        errors += r.errors;
        warm += r.warmup_requests;
        exhausted |= r.exhausted;
        for (k, v) in r.error_samples {
            *samples.entry(k).or_default() += v;
        }
    }
    if exhausted {
        errors += 1;
        *samples.entry("input exhausted: not enough cases prepared for the run".to_owned()).or_default() += 1;
    }
    // Requests sent in the window are counted, also those answered just after it (a closed loop).
    let window = duration.as_secs_f64();
    all.sort_unstable();
    let pct = |p: f64| -> f64 {
        if all.is_empty() {
            return 0.0;
        }
        let i = ((p / 100.0) * all.len() as f64).ceil() as usize;
        f64::from(all[i.clamp(1, all.len()) - 1]) / 1000.0
    };
    let mean = if all.is_empty() { 0.0 } else { all.iter().map(|&x| f64::from(x)).sum::<f64>() / all.len() as f64 / 1000.0 };
    let gen_cpu = gen2 - gen1;
    let mut out = String::new();
    let _ = write!(
        out,
        r#"{{"stage":"{}","connections":{},"duration_s":{:.2},"requests":{},"rps":{:.1},"p50_ms":{:.3},"p90_ms":{:.3},"p99_ms":{:.3},"mean_ms":{:.3},"max_ms":{:.3},"errors":{},"warmup_requests":{},"gen_cpu_s":{:.2},"gen_cpu_pct":{:.1}"#,
        o.stage,
        o.connections,
        window,
        all.len(),
        all.len() as f64 / window,
        pct(50.0),
        pct(90.0),
        pct(99.0),
        mean,
        pct(100.0),
        errors,
        warm,
        gen_cpu,
        100.0 * gen_cpu / window
    );
    out.push_str(r#","watch":{"#);
    for (i, (name, before)) in watch1.iter().enumerate() {
        let after = watch2.iter().find(|(n, _)| n == name).map_or(0.0, |(_, v)| *v);
        let _ = write!(out, r#"{}"{name}_cpu_pct":{:.1}"#, if i > 0 { "," } else { "" }, 100.0 * (after - before) / window);
    }
    out.push_str(r#"},"error_samples":["#);
    for (i, (k, v)) in samples.iter().take(5).enumerate() {
        let _ = write!(out, r#"{}"{} × {}""#, if i > 0 { "," } else { "" }, v, json_escape(k));
    }
    out.push_str("]}");
    println!("{out}");
    Ok(())
}

fn json_escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            c if (c as u32) < 0x20 => o.push(' '),
            c => o.push(c),
        }
    }
    o
}

// ---------------------------------------------------------------------------------------------
// CPU accounting from /proc (user + system time, all threads of a process).

/// Clock ticks per second of /proc/*/stat; 100 on every Linux this harness targets.
const CLK_TCK: f64 = 100.0;

fn cpu_of(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / CLK_TCK)
}

fn cpu_of_self() -> f64 {
    cpu_of("self").unwrap_or(0.0)
}

/// CPU seconds so far of each watched group: named pid lists, and every process whose command
/// name is one of `--watch-comm` (e.g. all PostgreSQL backends, which come and go).
fn watch_cpu(o: &Opts) -> Vec<(String, f64)> {
    let mut out: Vec<(String, f64)> =
        o.watch.iter().map(|(name, pids)| (name.clone(), pids.iter().filter_map(|p| cpu_of(&p.to_string())).sum())).collect();
    for comm in &o.watch_comm {
        let mut total = 0.0;
        if let Ok(dir) = std::fs::read_dir("/proc") {
            for entry in dir.flatten() {
                let name = entry.file_name();
                let Some(pid) = name.to_str().filter(|s| s.bytes().all(|b| b.is_ascii_digit())) else { continue };
                let is_comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == comm);
                if is_comm {
                    total += cpu_of(pid).unwrap_or(0.0);
                }
            }
        }
        out.push((comm.clone(), total));
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Cold start: from exec to the first 200 from /readyz, on a fresh database each run.

fn coldstart(args: &[String]) -> Result<(), String> {
    let o = parse_opts(args)?;
    let (program, rest) = o.command.split_first().ok_or("coldstart needs -- COMMAND ARGS…")?;
    let request = format!("GET /readyz HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n", o.addr).into_bytes();
    let mut times = Vec::new();
    for _ in 0..o.runs {
        if let Some(db) = &o.fresh {
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{db}{suffix}"));
            }
        }
        let started = Instant::now();
        let mut child = Command::new(program)
            .args(rest)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start {program}: {e}"))?;
        let ready = loop {
            if started.elapsed() > Duration::from_secs(30) {
                break None;
            }
            let mut conn = Conn::new(&o.addr);
            if let Ok(a) = conn.send(&request) {
                if a.status == 200 {
                    break Some(started.elapsed());
                }
            }
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!("the service exited during start-up: {status}"));
            }
            std::thread::sleep(Duration::from_millis(1));
        };
        let _ = child.kill();
        let _ = child.wait();
        times.push(ready.ok_or("not ready within 30 s")?.as_secs_f64() * 1000.0);
        std::thread::sleep(Duration::from_millis(200));
    }
    let mut sorted = times.clone();
    sorted.sort_by(f64::total_cmp);
    let median = sorted.get(sorted.len() / 2).copied().unwrap_or(0.0);
    let max = sorted.last().copied().unwrap_or(0.0);
    let list: Vec<String> = times.iter().map(|t| format!("{t:.1}")).collect();
    println!(r#"{{"stage":"coldstart","runs":{},"median_ms":{median:.1},"max_ms":{max:.1},"times_ms":[{}]}}"#, times.len(), list.join(","));
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// pgbench --log files: `client_id transaction_no time_us script_no time_epoch time_us_frac …`.

fn pgbench_log(args: &[String]) -> Result<(), String> {
    let o = parse_opts(args)?;
    let mut rows: Vec<(f64, u32)> = Vec::new(); // (end time in s, latency in µs)
    for f in &o.files {
        let text = std::fs::read_to_string(f).map_err(|e| format!("{f}: {e}"))?;
        for line in text.lines() {
            let cols: Vec<&str> = line.split_whitespace().collect();
            let (Some(lat), Some(sec), Some(usec)) = (cols.get(2), cols.get(4), cols.get(5)) else { continue };
            let (Ok(lat), Ok(sec), Ok(usec)) = (lat.parse::<u32>(), sec.parse::<f64>(), usec.parse::<f64>()) else {
                continue;
            };
            rows.push((sec + usec / 1e6, lat));
        }
    }
    if rows.is_empty() {
        return Err("no transactions in the pgbench logs".to_owned());
    }
    let first_start = rows.iter().map(|(end, lat)| end - f64::from(*lat) / 1e6).fold(f64::MAX, f64::min);
    let last_end = rows.iter().map(|(end, _)| *end).fold(f64::MIN, f64::max);
    let from = first_start + o.warmup;
    let mut lats: Vec<u32> = rows.iter().filter(|(end, lat)| end - f64::from(*lat) / 1e6 >= from).map(|(_, l)| *l).collect();
    lats.sort_unstable();
    let window = last_end - from;
    let pct = |p: f64| {
        let i = ((p / 100.0) * lats.len() as f64).ceil() as usize;
        lats.get(i.clamp(1, lats.len().max(1)) - 1).map_or(0.0, |&x| f64::from(x) / 1000.0)
    };
    println!(
        r#"{{"transactions":{},"duration_s":{window:.2},"tps":{:.1},"p50_ms":{:.3},"p99_ms":{:.3}}}"#,
        lats.len(),
        lats.len() as f64 / window,
        pct(50.0),
        pct(99.0)
    );
    Ok(())
}
