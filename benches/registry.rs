//! Registry push and pull with a real client: skopeo copies generated images (4 layers of
//! 25 MiB, then one layer of 1 GiB) from an OCI layout on disk to hubmock's release binary
//! and to Debian's `docker-registry` (distribution, the CNCF reference registry), both started
//! by this bench, then pulls each back into a directory. Every round is a new image (fresh
//! random layers, so nothing is deduplicated) pushed to every server in turn (the order
//! rotates each round), so all servers see the same load from whatever else the machine runs.
//! Prints the median push and pull times, MiB/s, hubmock's speed relative to distribution's,
//! and each server's peak RSS (`VmHWM`, reset between the two image sizes). When curl is
//! installed, each large round also pushes the layer alone with curl (one `PUT`) and reads it
//! back to `/dev/null`: the servers' own speed, which skopeo (hashing and reading the layout
//! on the same 2 cores) hides.
//!
//! `cargo bench --bench registry` (`ROUNDS=N` rounds of the 100 MiB image, default 5, and
//! `SMALL_MIB=N` the size of each of its four layers, default 25;
//! `LARGE_ROUNDS=N` of the large one, default 2; `LARGE_MIB=N` its size, default 1024).
//! Skips, saying why, when `docker-registry` or `skopeo` is not installed
//! (`apt-get install docker-registry skopeo`). Figures of one run: BENCHMARKS.md.

mod support;

use std::fs;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hubmock::registry::image::{write_oci_layout, ImageSpec};

const MIB: usize = 1024 * 1024;
/// The account of the hubmock that runs with auth on; it owns the `acme` namespace.
const USER: &str = "acme:bench-password";

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// `program`'s path on `PATH`, if any.
fn which(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}

/// A registry this bench started.
struct Server {
    name: &'static str,
    child: Child,
    port: u16,
    /// `--dest-creds`/`--src-creds` for skopeo, when the server wants them.
    creds: Option<&'static str>,
    /// Where its stderr goes, shown if it dies.
    log: PathBuf,
}

impl Server {
    /// Debian's distribution, storing on the file system under `dir`, with no auth.
    fn distribution(program: &Path, dir: &Path) -> Server {
        let port = support::free_port();
        let storage = dir.join("distribution-storage");
        fs::create_dir_all(&storage).unwrap();
        let config = dir.join("distribution.yml");
        fs::write(
            &config,
            format!(
                "version: 0.1\n\
                 log:\n  level: error\n  accesslog:\n    disabled: true\n\
                 storage:\n  filesystem:\n    rootdirectory: {}\n  cache:\n    blobdescriptor: inmemory\n  \
                 delete:\n    enabled: true\n\
                 http:\n  addr: 127.0.0.1:{port}\n",
                storage.display()
            ),
        )
        .unwrap();
        let log = dir.join("distribution.log");
        let child = Command::new(program)
            .arg("serve")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(&log).unwrap())
            .spawn()
            .expect("start docker-registry");
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "docker-registry did not listen on port {port}: {}",
                fs::read_to_string(&log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Server {
            name: "distribution",
            child,
            port,
            creds: None,
            log,
        }
    }

    /// hubmock's release binary, quiet (as distribution is), its blob store in a temporary
    /// directory under `dir`: with `--no-auth`, or with one user when `auth`.
    fn hubmock(dir: &Path, auth: bool) -> Server {
        let name = if auth { "hubmock (auth)" } else { "hubmock" };
        let tmp = dir.join(if auth {
            "hubmock-auth-tmp"
        } else {
            "hubmock-tmp"
        });
        fs::create_dir_all(&tmp).unwrap();
        let log = dir.join(format!("{}.log", name.replace([' ', '(', ')'], "")));
        let mut command = Command::new(env!("CARGO_BIN_EXE_hubmock"));
        command.args(["serve", "--port", "0", "-q"]);
        if auth {
            command.args(["--user", USER]);
        } else {
            command.arg("--no-auth");
        }
        let mut child = command
            .env("TMPDIR", &tmp)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(fs::File::create(&log).unwrap())
            .spawn()
            .expect("start hubmock");
        let url = support::listening_url(&mut child).unwrap_or_else(|| {
            let log = fs::read_to_string(&log).unwrap_or_default();
            panic!("{name} did not start: {log}")
        });
        let port = url
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("no port in hubmock's URL {url}"));
        Server {
            name,
            child,
            port,
            creds: auth.then_some(USER),
            log,
        }
    }

    /// A `/proc/PID/status` field in KiB (`VmRSS`, `VmHWM`).
    fn status_kib(&self, field: &str) -> u64 {
        support::status_kib(Some(self.child.id()), field)
    }

    /// Resets the peak RSS to the current RSS (Linux 4.0 and later; if it cannot, the peak
    /// stays the peak since the start).
    fn reset_peak(&self) {
        let _ = fs::write(format!("/proc/{}/clear_refs", self.child.id()), "5");
    }

    fn reference(&self, tag: &str) -> String {
        format!("docker://127.0.0.1:{}/acme/bench:{tag}", self.port)
    }

    fn push(&self, layout: &Path, tag: &str) -> Duration {
        let mut args = vec!["--dest-tls-verify=false".to_owned()];
        if let Some(creds) = self.creds {
            args.push(format!("--dest-creds={creds}"));
        }
        args.push(format!("oci:{}:{tag}", layout.display()));
        args.push(self.reference(tag));
        self.skopeo(&args)
    }

    fn pull(&self, into: &Path, tag: &str) -> Duration {
        let mut args = vec!["--src-tls-verify=false".to_owned()];
        if let Some(creds) = self.creds {
            args.push(format!("--src-creds={creds}"));
        }
        args.push(self.reference(tag));
        args.push(format!("dir:{}", into.display()));
        self.skopeo(&args)
    }

    /// Uploads `blob` (named `digest`) with curl, in one `PUT` of an upload session, into
    /// `acme/raw`; then reads it back to `/dev/null`. The server's own speed, with no client
    /// hashing or layout reading in the way.
    fn curl_round_trip(&self, blob: &Path, digest: &str) -> (Duration, Duration) {
        let creds = self.creds.map(|c| vec!["-u".to_owned(), c.to_owned()]);
        let creds = creds.unwrap_or_default();
        let base = format!("http://127.0.0.1:{}/v2/acme/raw/blobs", self.port);
        let out = Command::new("curl")
            .args(["-s", "-i", "-X", "POST"])
            .args(&creds)
            .arg(format!("{base}/uploads/"))
            .output()
            .expect("run curl");
        let head = String::from_utf8_lossy(&out.stdout);
        let location = head
            .lines()
            .find_map(|l| {
                let (name, value) = l.split_once(':')?;
                name.eq_ignore_ascii_case("location")
                    .then(|| value.trim().to_owned())
            })
            .unwrap_or_else(|| panic!("{} started no upload: {head}", self.name));
        let location = if location.starts_with('/') {
            format!("http://127.0.0.1:{}{location}", self.port)
        } else {
            location
        };
        let separator = if location.contains('?') { '&' } else { '?' };
        let put = format!("{location}{separator}digest={digest}");
        let push = self.curl(
            &creds,
            &["-X", "PUT", "-T", &blob.display().to_string(), &put],
        );
        let pull = self.curl(&creds, &[&format!("{base}/{digest}")]);
        (push, pull)
    }

    fn curl(&self, creds: &[String], args: &[&str]) -> Duration {
        let started = Instant::now();
        let out = Command::new("curl")
            .args(["-s", "-o", "/dev/null", "-w", "%{http_code}"])
            .args(["-H", "Content-Type: application/octet-stream"])
            .args(creds)
            .args(args)
            .output()
            .expect("run curl");
        let elapsed = started.elapsed();
        let status = String::from_utf8_lossy(&out.stdout);
        assert!(
            status == "201" || status == "200",
            "curl {args:?} against {} answered {status}",
            self.name
        );
        elapsed
    }

    fn skopeo(&self, args: &[String]) -> Duration {
        let started = Instant::now();
        let out = Command::new("skopeo")
            .args(["--insecure-policy", "copy", "--quiet"])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run skopeo");
        let elapsed = started.elapsed();
        assert!(
            out.status.success(),
            "skopeo copy {args:?} against {} failed: {}\n{} log:\n{}",
            self.name,
            String::from_utf8_lossy(&out.stderr),
            self.name,
            fs::read_to_string(&self.log).unwrap_or_default()
        );
        elapsed
    }

    /// SIGTERM, so hubmock removes its blob store; then wait.
    fn stop(mut self) {
        support::stop(&mut self.child);
    }
}

/// What one server did with one image size.
#[derive(Default)]
struct Figures {
    pushes: Vec<Duration>,
    pulls: Vec<Duration>,
    /// curl's push and pull of the largest layer, when curl is there and asked for.
    raw_pushes: Vec<Duration>,
    raw_pulls: Vec<Duration>,
    peak_kib: u64,
}

fn median(times: &[Duration]) -> Duration {
    let mut sorted = times.to_vec();
    sorted.sort();
    sorted[sorted.len() / 2]
}

/// Pushes `rounds` fresh images of `layers` layers of `layer_size` bytes to every server and
/// pulls each back (with `raw`, also the first layer with curl); answers each server's
/// figures (in `servers`' order) and the image's layer bytes.
fn phase(
    servers: &[Server],
    work: &Path,
    label: &str,
    rounds: usize,
    (layers, layer_size): (usize, usize),
    raw: bool,
) -> (Vec<Figures>, u64) {
    let mut figures: Vec<Figures> = servers.iter().map(|_| Figures::default()).collect();
    for server in servers {
        server.reset_peak();
    }
    let mut bytes = 0;
    for round in 0..rounds {
        let tag = format!("{label}-{round}");
        // A new seed each round (and each run of the bench): new layer content, nothing
        // deduplicated by a registry that already has it.
        let nonce = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let layout = work.join(format!("layout-{tag}"));
        let first_layer = {
            let image = ImageSpec::new(format!("bench-{tag}-{nonce}"))
                .layers(layers, layer_size)
                .generate();
            bytes = image.layers_size();
            write_oci_layout(&layout, &tag, &image.manifest, image.blobs()).unwrap();
            image.layers[0].digest()
        };
        for k in 0..servers.len() {
            let i = (k + round) % servers.len();
            let server = &servers[i];
            figures[i].pushes.push(server.push(&layout, &tag));
            let into = work.join(format!("pulled-{tag}-{i}"));
            figures[i].pulls.push(server.pull(&into, &tag));
            let _ = fs::remove_dir_all(&into);
            if raw {
                let blob = layout.join("blobs/sha256").join(first_layer.hex());
                let (push, pull) = server.curl_round_trip(&blob, &first_layer.to_string());
                figures[i].raw_pushes.push(push);
                figures[i].raw_pulls.push(pull);
            }
        }
        let _ = fs::remove_dir_all(&layout);
        eprintln!("  {label} round {} of {rounds} done", round + 1);
    }
    for (server, figures) in servers.iter().zip(&mut figures) {
        figures.peak_kib = server.status_kib("VmHWM");
    }
    (figures, bytes)
}

fn mib_per_s(bytes: u64, time: Duration) -> f64 {
    bytes as f64 / MIB as f64 / time.as_secs_f64()
}

fn main() {
    let (Some(registry), Some(_)) = (which("docker-registry"), which("skopeo")) else {
        println!(
            "registry bench skipped: it needs `docker-registry` (Debian's distribution) and \
             `skopeo` on PATH (apt-get install docker-registry skopeo)"
        );
        return;
    };
    let rounds = env_number("ROUNDS", 5).max(1);
    let large_rounds = env_number("LARGE_ROUNDS", 2).max(1);
    let large_mib = env_number("LARGE_MIB", 1024).max(1);
    let small_mib = env_number("SMALL_MIB", 25).max(1);
    let version = Command::new(&registry)
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    let work = tempfile::Builder::new()
        .prefix("hubmock-regbench-")
        .tempdir()
        .unwrap();
    let servers = vec![
        Server::distribution(&registry, work.path()),
        Server::hubmock(work.path(), false),
        Server::hubmock(work.path(), true),
    ];
    let idle: Vec<u64> = servers.iter().map(|s| s.status_kib("VmRSS")).collect();

    eprintln!(
        "registry bench: {rounds} round(s) of 4 x {small_mib} MiB, {large_rounds} of 1 x {large_mib} MiB"
    );
    let curl = which("curl").is_some();
    let small = phase(
        &servers,
        work.path(),
        "small",
        rounds,
        (4, small_mib * MIB),
        false,
    );
    let large = phase(
        &servers,
        work.path(),
        "large",
        large_rounds,
        (1, large_mib * MIB),
        curl,
    );

    println!(
        "skopeo copy, median of each server's rounds; servers: {version}, hubmock release binary"
    );
    println!(
        "| image | server | push | push MiB/s | pull | pull MiB/s | push speed ÷ distribution's | pull speed ÷ distribution's | peak RSS (VmHWM) |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for ((figures, bytes), label, n) in [
        (&small, format!("4 x {small_mib} MiB"), rounds),
        (&large, format!("1 x {large_mib} MiB"), large_rounds),
    ] {
        let base_push = median(&figures[0].pushes);
        let base_pull = median(&figures[0].pulls);
        for (server, f) in servers.iter().zip(figures) {
            let push = median(&f.pushes);
            let pull = median(&f.pulls);
            println!(
                "| {label} ({n} rounds) | {} | {:.2} s | {:.0} | {:.2} s | {:.0} | {:.2} | {:.2} | {:.1} MiB |",
                server.name,
                push.as_secs_f64(),
                mib_per_s(*bytes, push),
                pull.as_secs_f64(),
                mib_per_s(*bytes, pull),
                base_push.as_secs_f64() / push.as_secs_f64(),
                base_pull.as_secs_f64() / pull.as_secs_f64(),
                f.peak_kib as f64 / 1024.0,
            );
        }
    }
    if curl {
        println!();
        println!("curl, the {large_mib} MiB layer alone (one PUT of an upload session; GET to /dev/null), median:");
        println!("| server | push | push MiB/s | pull | pull MiB/s | push speed ÷ distribution's | pull speed ÷ distribution's |");
        println!("|---|---|---|---|---|---|---|");
        // One layer: the image's layer bytes are the blob's.
        let (figures, bytes) = &large;
        let base_push = median(&figures[0].raw_pushes);
        let base_pull = median(&figures[0].raw_pulls);
        for (server, f) in servers.iter().zip(figures) {
            let push = median(&f.raw_pushes);
            let pull = median(&f.raw_pulls);
            println!(
                "| {} | {:.2} s | {:.0} | {:.2} s | {:.0} | {:.2} | {:.2} |",
                server.name,
                push.as_secs_f64(),
                mib_per_s(*bytes, push),
                pull.as_secs_f64(),
                mib_per_s(*bytes, pull),
                base_push.as_secs_f64() / push.as_secs_f64(),
                base_pull.as_secs_f64() / pull.as_secs_f64(),
            );
        }
    }
    println!(
        "idle RSS after start: {}",
        servers
            .iter()
            .zip(&idle)
            .map(|(s, kib)| format!("{} {:.1} MiB", s.name, *kib as f64 / 1024.0))
            .collect::<Vec<_>>()
            .join(", ")
    );
    for server in servers {
        server.stop();
    }
}
